"""A refused request is one log line, not a traceback that reads as a crash
(issue 23)."""

import io
import logging

import pytest
from django.urls import reverse


@pytest.fixture
def console():
    """What the console handler of LOGGING prints, captured."""
    (handler,) = [
        h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler
    ]
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


@pytest.mark.django_db
def test_a_refused_page_is_logged_in_one_line(login, carol, console):
    response = login(carol).get(reverse("dashboard"))
    assert response.status_code == 403
    printed = console.getvalue()
    assert "Forbidden (Permission denied): /dashboard/" in printed
    assert "Traceback" not in printed
    assert len(printed.strip().splitlines()) == 1


def test_other_errors_keep_their_traceback(console):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("django.request").exception("Internal Server Error: /x")
    assert "Traceback" in console.getvalue()


def test_with_debug_on_as_in_the_demo_a_refusal_is_still_one_line(tmp_path):
    """DEBUG=True (a developer's runserver) adds Django's own console handler to the
    `django` loggers: it printed the traceback before the one line."""
    import os
    import subprocess
    import sys

    from tests.workers import ROOT

    refuse = (
        "from django.core.exceptions import PermissionDenied\n"
        "from django.core.handlers.exception import response_for_exception\n"
        "from django.test import RequestFactory\n"
        "try:\n"
        "    raise PermissionDenied('Only opsgate admins can open this page.')\n"
        "except PermissionDenied as exc:\n"
        "    response = response_for_exception(RequestFactory().get('/x/'), exc)\n"
        "print(response.status_code)\n"
    )
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "OPSGATE_DEMO": "true",
        "OPSGATE_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "--no-imports",
            "-c",
            refuse,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "403", done.stderr
    assert done.stderr.splitlines() == ["Forbidden (Permission denied): /x/"]

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

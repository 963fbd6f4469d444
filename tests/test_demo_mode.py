"""The demo's own help (issue 23): the sign-in page names the demo people and
how to get a TOTP code, and the e-mails are a page instead of a terminal flood.
Outside the demo neither exists."""

import sys

import pytest
from django.core import mail
from django.urls import reverse

from accounts_app.invitations import invitation_send
from tests.workers import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings, tmp_path):
    settings.DEMO = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


def test_the_demo_sign_in_page_names_the_people_the_password_and_the_code_command(
    client, demo
):
    page = client.get(reverse("account_login")).content.decode()
    assert "This is the demo" in page
    assert "opsgate-demo-password" in page
    for address in ("admin@example.com", "bob@example.com", "carol@example.com"):
        assert address in page
    assert f"{sys.executable} {ROOT / 'manage.py'} demo_totp bob@example.com" in page
    assert reverse("demo_mail") in page


def test_outside_the_demo_the_sign_in_page_names_nobody_and_mail_is_not_found(
    client, settings
):
    settings.DEMO = False
    page = client.get(reverse("account_login")).content.decode()
    assert "This is the demo" not in page
    assert "opsgate-demo-password" not in page
    assert client.get(reverse("demo_mail")).status_code == 404


def test_the_demo_mail_page_shows_an_invitation_with_its_link(client, demo, carol):
    assert "No e-mail yet" in client.get(reverse("demo_mail")).content.decode()
    assert invitation_send(person=carol, actor=None, base_url="http://testserver")
    mail.send_mail("Second", "Body two", None, ["dave@example.com"])
    page = client.get(reverse("demo_mail")).content.decode()
    assert "[opsgate] You have been invited: set your password" in page
    assert "carol@example.com" in page and "dave@example.com" in page
    # The invitation's link is a link.
    assert 'href="http://testserver/accounts/password/reset/key/' in page
    # Newest first.
    assert page.index("dave@example.com") < page.index("carol@example.com")


def test_in_demo_mode_mail_goes_to_the_mail_pages_folder_and_requests_are_quiet(
    tmp_path,
):
    """OPSGATE_DEMO (scripts/demo.sh) sends e-mail to files the mail page
    reads instead of the terminal, and runserver's request lines are off."""
    import os
    import subprocess

    show = (
        "import logging; from django.conf import settings as s; "
        "print(s.DEMO, s.EMAIL_BACKEND, s.EMAIL_FILE_PATH, "
        "logging.getLogger('django.server').getEffectiveLevel())"
    )
    env = {k: v for k, v in os.environ.items() if k != "EMAIL_BACKEND"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", show],
        env={**env, "OPSGATE_DEMO": "true", "OPSGATE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "True",
        "django.core.mail.backends.filebased.EmailBackend",
        str(tmp_path / "mail"),
        "40",
    ]


def test_the_demo_settings_show_opsgates_not_found_page_and_serve_the_styles(tmp_path):
    """scripts/demo.sh runs without debug mode: a wrong address gets opsgate's
    own "Not found" page (not Django's list of every URL), and the stylesheet
    is still served, without collectstatic."""
    import os
    import re
    import subprocess

    script = (ROOT / "scripts/demo.sh").read_text()
    env = dict(re.findall(r"\b(DJANGO_DEBUG|OPSGATE_DEMO)=(\w+)", script))
    assert env == {"DJANGO_DEBUG": "false", "OPSGATE_DEMO": "true"}
    probe = (
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='127.0.0.1')\n"
        "css = c.get('/static/opsgate/opsgate.css')\n"
        "missing = c.get('/no-such-page/')\n"
        "print(css.status_code, b'.badge' in b''.join(css.streaming_content))\n"
        "print(missing.status_code, b'There is nothing here' in missing.content,"
        " b'URLconf' in missing.content)\n"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", probe],
        env={**os.environ, **env, "OPSGATE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split("\n")[:2] == ["200 True", "404 True False"], done.stderr

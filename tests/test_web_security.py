"""Web security properties: the session key changes at sign-in, and a one-time
console password reaches the admin's page and nowhere else (database, logs)."""

import html
import logging
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from provisioning import sync

pytestmark = pytest.mark.django_db


def test_the_session_key_rotates_at_sign_in(client, carol):
    carol.user.set_password("a-long-test-password-1")
    carol.user.save()
    session = client.session
    session["planted"] = "by an attacker"  # session fixation attempt
    session.save()
    client.cookies["sessionid"] = session.session_key
    before = session.session_key
    response = client.post(
        reverse("account_login"),
        {"login": "carol@example.com", "password": "a-long-test-password-1"},
    )
    assert response.status_code == 302
    after = client.cookies["sessionid"].value
    assert after and after != before
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=before).exists()


def test_a_console_password_is_shown_once_and_stored_nowhere(
    aws_env, login, alice, carol, caplog, iam, tmp_path
):
    sync.iam_user_sync(iam_user_id=carol.pk)
    caplog.set_level(logging.DEBUG)
    response = login(alice).post(reverse("person_console_password", args=[carol.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    match = re.search(
        r'<pre id="pw"><code>(.*?)</code></pre>', response.content.decode()
    )
    password = html.unescape(match.group(1))
    assert len(password) == 20
    # moto keeps no PasswordResetRequired flag; the call sets it (see the
    # recorded CreateLoginProfile parameters in test_least_privilege).
    assert (
        iam.get_login_profile(UserName="carol")["LoginProfile"]["UserName"] == "carol"
    )

    # Not in any table (dumped whole), not in any log record.
    dump = tmp_path / "db.json"
    call_command("dumpdata", output=str(dump), verbosity=0)
    assert password not in dump.read_text()
    assert password not in caplog.text
    # And the page is not served again.
    again = login(alice).get(reverse("person_detail", args=[carol.pk]))
    assert password not in again.content.decode()

"""The demo seed: admin and approver have TOTP with the published demo
secret, and demo_totp prints their current code (and nobody else's)."""

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management import CommandError, call_command

from provisioning.management.commands.demo_seed import DEMO_TOTP_SECRET, TRY

pytestmark = pytest.mark.django_db


def test_demo_seed_gives_admin_and_approver_totp_and_demo_totp_prints_the_code(
    aws_env, capsys
):
    call_command("demo_seed")
    call_command("demo_seed")  # twice is harmless
    capsys.readouterr()
    call_command("demo_totp", "bob@example.com")
    code = capsys.readouterr().out.split()[0]
    now = int(time.time()) // 30
    window = {
        format_hotp_value(hotp_value(DEMO_TOTP_SECRET, c)) for c in (now - 1, now)
    }
    assert code in window
    assert set(Authenticator.objects.values_list("user__username", flat=True)) == {
        "admin",
        "bob",
    }
    with pytest.raises(CommandError, match="no TOTP"):
        call_command("demo_totp", "carol@example.com")
    call_command("demo_login_help")
    help_text = capsys.readouterr().out
    assert "demo_totp admin@example.com" in help_text
    # The CLI walkthrough's people (carol's payments request is pending).
    assert "sign in as dave@example.com to request, bob to approve" in help_text
    assert "use him for the CLI walkthrough" in TRY["dave"]

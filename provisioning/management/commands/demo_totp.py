"""Print the current TOTP code of a demo account (demo only: it works only for
accounts whose secret is the demo's published one)."""

import time

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from provisioning.management.commands.demo_seed import DEMO_TOTP_SECRET

PERIOD = 30


class Command(BaseCommand):
    help = "Print the current 6-digit TOTP code of a demo account."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")

    def handle(self, *args, email: str, **options) -> None:
        user = get_user_model().objects.filter(email__iexact=email).first()
        totp = Authenticator.objects.filter(
            user=user, type=Authenticator.Type.TOTP
        ).first()
        if user is None or totp is None:
            raise CommandError(f"{email} has no TOTP authenticator.")
        if decrypt(totp.data["secret"]) != DEMO_TOTP_SECRET:
            raise CommandError(f"{email} is not a demo account; use its own app.")
        now = int(time.time())
        code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, now // PERIOD))
        left = PERIOD - now % PERIOD
        self.stdout.write(f"{code}  (valid for {left} more seconds)")

"""Print the current TOTP code of a demo account (demo only: it works only for
accounts whose secret is the demo's published one)."""

import time
from pathlib import Path

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from provisioning.management.commands.demo_login_help import demo_totp_command
from provisioning.management.commands.demo_seed import DEMO_TOTP_SECRET

PERIOD = 30
DEMO_VAR_DIR = Path(settings.BASE_DIR) / "var" / "demo"  # scripts/demo.sh's


class Command(BaseCommand):
    help = "Print the current 6-digit TOTP code of a demo account."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")

    def handle(self, *args, email: str, **options) -> None:
        self._check_database(email)
        user = get_user_model().objects.filter(email__iexact=email).first()
        totp = Authenticator.objects.filter(
            user=user, type=Authenticator.Type.TOTP
        ).first()
        if user is None or totp is None:
            raise CommandError(
                f"{email} has no TOTP authenticator.{self._elsewhere(email)}"
            )
        if decrypt(totp.data["secret"]) != DEMO_TOTP_SECRET:
            raise CommandError(f"{email} is not a demo account; use its own app.")
        now = int(time.time())
        code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, now // PERIOD))
        left = PERIOD - now % PERIOD
        self.stdout.write(f"{code}  (valid for {left} more seconds)")

    def _check_database(self, email: str) -> None:
        """One line that says what to run, instead of a traceback (and without
        creating an empty SQLite file) when this is not the demo's database."""
        db = settings.DATABASES["default"]
        missing = db["ENGINE"].endswith("sqlite3") and not Path(db["NAME"]).exists()
        if not missing:
            try:
                missing = "auth_user" not in connection.introspection.table_names()
            except DatabaseError:
                missing = True
        if missing:
            raise CommandError(
                f"No demo database at {db['NAME']}. Start the demo "
                f"(scripts/demo.sh), then run: {demo_command(email)}"
            )

    def _elsewhere(self, email: str) -> str:
        """When this is not the demo's database (OPSGATE_VAR_DIR unset while
        the demo runs), where the demo's is."""
        if Path(settings.VAR_DIR).resolve() == DEMO_VAR_DIR.resolve():
            return ""
        name = settings.DATABASES["default"]["NAME"]
        return f" The database {name} is not the demo's: run {demo_command(email)}"


def demo_command(email: str) -> str:
    return demo_totp_command(email, var_dir=DEMO_VAR_DIR)

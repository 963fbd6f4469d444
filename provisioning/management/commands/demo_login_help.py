import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from provisioning.management.commands.demo_seed import (
    DEMO_TOTP_USERS,
    PASSWORD,
    PEOPLE,
    TRY,
)


def demo_totp_command(email: str, *, var_dir: Path | None = None) -> str:
    """The exact command, with absolute paths, that prints an account's code
    from any folder."""
    manage = Path(settings.BASE_DIR) / "manage.py"
    return (
        f"OPSGATE_VAR_DIR={var_dir or settings.VAR_DIR} {sys.executable} {manage} "
        f"demo_totp {email}"
    )


class Command(BaseCommand):
    help = "Print how to sign in to the demo."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args, url: str, **options) -> None:
        lines = [
            "",
            "opsgate demo is starting at " + url,
            "",
            f"Sign in with any of these e-mail addresses and the password {PASSWORD}:",
        ]
        for username, email, _staff, _first in PEOPLE:
            lines.append(f"  {email:<20} {TRY[username]}")
        totp = [email for username, email, *_ in PEOPLE if username in DEMO_TOTP_USERS]
        lines += [
            "",
            f"{' and '.join(totp)} have two-factor authentication (admins and",
            "approvers must). Get their current 6-digit code in another terminal:",
            *(f"  {demo_totp_command(email)}" for email in totp),
            "",
            "Try: ledger needs 2 approvals (admin gave one); infrastructure asks",
            "for a ticket like OPS-123; checkout has roles in the staging and prod",
            "accounts (AWS accounts page); the API and the opsgate command line",
            "(docs/cli.md: sign in as dave@example.com to request, bob to approve;",
            "carol already has a pending request for payments as deploy):",
            f"  .venv/bin/opsgate login --url {url}",
            "",
            f"E-mails (invitations, decisions): {url}/demo/mail/",
            "",
            f"Django admin: {url}/admin/  (sign in as admin@example.com first)",
            "AWS is a moto server; the worker log is var/demo/worker.log.",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        self.stdout.write("\n".join(lines))

"""First-run set-up of an installation: the cache table, the default AWS
account, optionally the permissions boundaries and a first admin. Safe to run
again: each step keeps what exists."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts_app.invitations import invitation_url
from accounts_app.models import IamUser
from accounts_app.services import people
from provisioning import direct
from provisioning.aws import AwsError


class Command(BaseCommand):
    help = (
        "Set up opsgate after `migrate`: the database cache table, the default "
        "AWS account (the account of opsgate's credentials, found with "
        "sts:GetCallerIdentity), with --boundaries the two permissions "
        "boundaries (run with an administrator's credentials), and with "
        "--admin-email a first admin, whose invitation link is printed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--boundaries",
            action="store_true",
            help="also create or update the permissions boundaries "
            "(manage.py opsgate_boundaries --apply) with the caller's credentials",
        )
        parser.add_argument("--admin-email", default="")
        parser.add_argument(
            "--admin-name",
            default="",
            help="the first admin's IAM user name (default: the e-mail's local part)",
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="the portal's address, for the invitation link",
        )

    def handle(self, *args, **o) -> None:
        call_command("createcachetable", verbosity=0)
        self.stdout.write("cache table: ready")
        try:
            account = direct.account_ensure_default()
        except AwsError as exc:
            raise CommandError(
                f"Could not find the AWS account of opsgate's credentials: {exc}. "
                "Check AWS_PROFILE / AWS_ACCESS_KEY_ID (and AWS_ENDPOINT_URL "
                "for moto), then run this again."
            ) from None
        self.stdout.write(f"default AWS account: {account.name} {account.account_id}")
        if o["boundaries"]:
            call_command("opsgate_boundaries", "--apply", stdout=self.stdout)
        if o["admin_email"]:
            self._admin(account, o["admin_email"], o["admin_name"], o["base_url"])
        self.stdout.write(
            self.style.SUCCESS(
                "opsgate is set up. Start the web server, a Celery worker and "
                "beat (see docker-compose.yml)."
            )
        )

    def _admin(self, account, email: str, name: str, base_url: str) -> None:
        User = get_user_model()
        login = User.objects.filter(email__iexact=email).first()
        if login is None:
            name = name or email.split("@")[0]
            try:
                with transaction.atomic():
                    person = people.person_add(
                        actor=None,
                        account=account,
                        iam_user_name=name,
                        email=email,
                        is_staff=True,
                    )
                    login = person.user
                    login.is_staff = login.is_superuser = True
                    login.save(update_fields=["is_staff", "is_superuser"])
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(
                        f"--admin-{'name' if f == 'iam_user_name' else f}: "
                        f"{' '.join(m)}"
                        for f, m in getattr(exc, "message_dict", {"": exc.messages})
                        .items()
                    )
                ) from None
            self.stdout.write(f"first admin: {email} (IAM user {person.name})")
        elif not login.is_staff:
            raise CommandError(f"--admin-email: {email} exists and is not an admin.")
        else:
            self.stdout.write(f"first admin: {email} exists")
        if login.has_usable_password():
            return
        self.stdout.write(
            "Set the admin's password and TOTP from this link (valid for "
            f"{max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)} days):\n"
            f"  {invitation_url(login, base_url=base_url)}"
        )
        if not IamUser.objects.filter(user=login).exists():
            self.stdout.write("(no IAM user: the admin only uses the portal)")

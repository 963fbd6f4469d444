import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts_app import importer, validation
from accounts_app.models import AwsAccount
from provisioning import direct, sync
from provisioning.aws import AwsError


class Command(BaseCommand):
    help = (
        "Import the OperationUsersStack parameter file (users, roles, principals) "
        "as people, projects, operation roles and approved grants."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--account",
            help=(
                "12-digit id of the account the file's roles go into (its users "
                "go into that account's identity account). Default: the default "
                "account."
            ),
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Provision AWS in this process instead of leaving it to the worker.",
        )

    def handle(
        self, *args, file: Path, sync: bool, account: str | None = None, **options
    ) -> None:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"{file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
            ) from None
        account = self._account(account)
        result = importer.apply(
            data, account=account, path=settings.OPSGATE["IAM_PATH"]
        )
        if result.errors:
            for error in result.errors:
                self.stderr.write(f"{file}: {error}")
            raise CommandError(f"{len(result.errors)} error(s); nothing was imported.")
        for line in result.created:
            self.stdout.write(f"created {line}")
        if not result.created:
            self.stdout.write("nothing to change")
        if sync:
            self._sync_now(account, result)

    def _account(self, account_id: str | None) -> AwsAccount:
        if not account_id:
            return direct.account_ensure_default()
        try:
            validation.validate_account_id(account_id)
        except ValidationError as exc:
            raise CommandError(f"--account: {exc.messages[0]}") from None
        account = AwsAccount.objects.filter(account_id=account_id).first()
        if account is None:
            raise CommandError(
                f"--account: no account {account_id} in opsgate; add it first "
                "(manage.py account_add)."
            )
        return account

    def _sync_now(self, account, result) -> None:
        try:
            if account.identity != account:
                sync.account_baseline_sync(account_id=account.identity.pk)
            sync.account_baseline_sync(account_id=account.pk)
            for pk in result.users_to_sync:
                sync.iam_user_sync(iam_user_id=pk)
            for pk in result.roles_to_sync:
                sync.role_sync(role_id=pk)
        except AwsError as exc:
            raise CommandError(f"AWS: {exc.message}") from None
        self.stdout.write("AWS is in sync")

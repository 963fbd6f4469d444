from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts_app.management.commands.account_add import validation_text
from accounts_app.services import accounts
from provisioning import organizations
from provisioning.aws import AwsError


class Command(BaseCommand):
    help = (
        "List the AWS Organization's accounts (optionally those under one OU) "
        "and which ones opsgate manages; --enable ID adds one (a roles "
        "account trusting --identity-account, reached through --role-name)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ou", default="", help="An OU id (ou-...) or root id.")
        parser.add_argument("--enable", action="append", default=[], metavar="ID")
        parser.add_argument("--people", action="store_true")
        parser.add_argument("--roles", action="store_true")
        parser.add_argument("--identity-account", default="")
        parser.add_argument(
            "--role-name",
            default="",
            help="The provisioner role's name in each enabled account "
            "(e.g. opsgate-provisioner); empty: opsgate's own credentials.",
        )
        parser.add_argument("--external-id", default="")
        parser.add_argument("--regions", default="")

    def handle(self, *args, **o) -> None:
        try:
            found = organizations.organization_accounts(ou_id=o["ou"])
        except AwsError as exc:
            raise CommandError(exc.message) from None
        by_id = {a.account_id: a for a in found}
        unknown = [i for i in o["enable"] if i not in by_id]
        if unknown:
            raise CommandError(
                f"--enable: {', '.join(unknown)} not among the accounts listed"
                + (f" under {o['ou']}" if o["ou"] else "")
            )
        for account_id in o["enable"]:
            self._enable(by_id[account_id], o)
        if o["enable"]:
            found = organizations.organization_accounts(ou_id=o["ou"])
        for a in found:
            state = f"managed as {a.managed.name}" if a.managed else "not managed"
            self.stdout.write(f"{a.account_id}  {a.name:<24} {a.status:<10} {state}")

    def _enable(self, found, o) -> None:
        if found.managed:
            self.stdout.write(f"{found.account_id} is already managed")
            return
        people, roles = o["people"], o["roles"]
        if not (people or roles):
            people = roles = True
        role_arn = (
            f"arn:aws:iam::{found.account_id}:role/{o['role_name']}"
            if o["role_name"]
            else ""
        )
        try:
            account = accounts.account_add(
                actor="manage.py accounts_discover",
                account_id=found.account_id,
                name=found.name,
                holds_people=people,
                holds_roles=roles,
                identity_account_id=o["identity_account"],
                assume_role_arn=role_arn,
                external_id=o["external_id"],
                regions=o["regions"].split(","),
            )
        except ValidationError as exc:
            raise CommandError(f"{found.account_id}: {validation_text(exc)}") from None
        self.stdout.write(f"enabled {account}")

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts_app.services import accounts

# The option each service field comes from.
OPTIONS = {
    "account_id": "--id",
    "assume_role_arn": "--role-arn",
    "holds_people": "--people",
    "holds_roles": "--roles",
}


def validation_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(
            f"{OPTIONS.get(field, '--' + field.replace('_', '-'))}: "
            f"{' '.join(messages)}"
            for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = (
        "Add an AWS account opsgate manages: what it holds (people, roles or "
        "both), the identity account its roles trust, how opsgate reaches it "
        "(a provisioner role and external id, or opsgate's own credentials) "
        "and where its SSM sessions run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--id", required=True, dest="account_id")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--people", action="store_true", help="It holds IAM users (people)."
        )
        parser.add_argument(
            "--roles", action="store_true", help="It holds operation roles."
        )
        parser.add_argument(
            "--identity-account",
            default="",
            help="12-digit id of the account whose IAM users its roles trust "
            "(default: itself).",
        )
        parser.add_argument("--role-arn", default="", help="The provisioner role.")
        parser.add_argument("--external-id", default="")
        parser.add_argument(
            "--regions", default="", help="Comma-separated, e.g. us-east-1,eu-west-1"
        )
        parser.add_argument("--partition", default="aws")

    def handle(self, *args, **o) -> None:
        # Neither flag: both, like every single-account install.
        people, roles = o["people"], o["roles"]
        if not (people or roles):
            people = roles = True
        try:
            account = accounts.account_add(
                actor="manage.py account_add",
                account_id=o["account_id"],
                name=o["name"],
                holds_people=people,
                holds_roles=roles,
                identity_account_id=o["identity_account"],
                assume_role_arn=o["role_arn"],
                external_id=o["external_id"],
                regions=o["regions"].split(","),
                partition=o["partition"],
            )
        except ValidationError as exc:
            raise CommandError(validation_text(exc)) from None
        self.stdout.write(
            f"added {account}: holds {account.kind_label}, its roles trust the "
            f"users of {account.identity}; opsgate reaches it "
            + (
                f"through {account.assume_role_arn}"
                if account.assume_role_arn
                else "with its own credentials"
            )
        )

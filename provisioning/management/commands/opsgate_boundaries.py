import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts_app.validation import validate_regions
from provisioning import boundaries, os_user_deploy, os_user_documents, policies
from provisioning.aws import AwsError


class Command(BaseCommand):
    help = (
        "The deployment step for opsgate's two permissions boundaries (operation "
        "roles, operators' IAM users) and its two SSM documents (the OS run-as "
        "users): print the boundaries, or with --apply create or update all "
        "four in the caller's account with the caller's credentials (an "
        "administrator's, not opsgate's: opsgate may not write them), the "
        "documents in every region of the account's sessions. With "
        "--cloudformation (--ssm-cloudformation), print the template that "
        "creates the boundaries (the documents, per region)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--apply",
            action="store_true",
            help="create or update both boundaries in the caller's account",
        )
        parser.add_argument(
            "--cloudformation",
            action="store_true",
            help="print the CloudFormation template that creates both",
        )
        parser.add_argument(
            "--ssm-cloudformation",
            action="store_true",
            help="print the CloudFormation template of the two SSM documents",
        )
        parser.add_argument(
            "--ssm-documents",
            action="store_true",
            help="print the two SSM documents (opsgate-CheckOsUser, "
            "opsgate-EnsureOsUser)",
        )
        parser.add_argument(
            "--region",
            action="append",
            dest="regions",
            metavar="REGION",
            help="with --apply: create the SSM documents in this region "
            "(repeat for several); default: the regions of the account's "
            "sessions in opsgate, or OPSGATE_REGION",
        )
        parser.add_argument(
            "--only",
            choices=["role", "user"],
            help="print just that boundary's document",
        )
        parser.add_argument("--account-id", help="default: the caller's account (STS)")
        parser.add_argument("--partition", default="aws")

    def handle(self, *args, **options) -> None:
        conf = settings.OPSGATE
        try:
            if options["cloudformation"]:
                self._print(
                    boundaries.cloudformation_template(
                        path=conf["IAM_PATH"],
                        role_boundary_name=conf["ROLE_BOUNDARY_NAME"],
                        user_boundary_name=conf["USER_BOUNDARY_NAME"],
                    )
                )
            elif options["ssm_cloudformation"]:
                self._print(os_user_documents.cloudformation_template())
            elif options["ssm_documents"]:
                self._print(os_user_documents.documents())
            elif options["apply"]:
                self._apply(options["account_id"], options["regions"])
            elif options["only"] == "role":
                self._print(policies.role_boundary_policy())
            else:
                account_id = options["account_id"] or boundaries.caller()[0]
                documents = boundaries.documents(
                    account_id=account_id, partition=options["partition"]
                )
                if options["only"] == "user":
                    self._print(documents[conf["USER_BOUNDARY_NAME"]])
                else:
                    self._print(documents)
        except AwsError as exc:
            raise CommandError(exc.message) from exc

    def _print(self, document: dict) -> None:
        self.stdout.write(json.dumps(document, indent=2))

    def _apply(self, account_id: str | None, regions: list[str] | None) -> None:
        caller = boundaries.caller()[0]
        if account_id and account_id != caller:
            raise CommandError(
                f"The credentials in use are for account {caller}, not {account_id}: "
                "run this with an administrator's credentials for that account."
            )
        if regions:
            try:
                validate_regions(regions)
            except ValidationError as exc:
                raise CommandError(exc.messages[0]) from exc
        for arn, outcome in boundaries.apply().items():
            self.stdout.write(f"{outcome}: {arn}")
        regions = regions or os_user_deploy.regions_of(caller)
        for region, name, outcome, version in os_user_deploy.apply(regions=regions):
            self.stdout.write(
                f"{outcome}: SSM document {name} in {region} (default version "
                f"{version})"
            )
        self.stdout.write(
            "opsgate's worker picks them up at its next sweep (an account baseline "
            "waiting for them carries on by itself)."
        )

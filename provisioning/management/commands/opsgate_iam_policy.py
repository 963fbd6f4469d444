import json

from django.conf import settings
from django.core.management.base import BaseCommand

from provisioning import aws, policies, provisioner, service_policy


class Command(BaseCommand):
    help = (
        "Print the least-privilege IAM policy for opsgate's own credentials "
        "(or, with --boundary, the operation roles' permissions boundary; "
        "manage.py opsgate_boundaries prints and creates both boundaries)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account-id", help="default: the caller's account (STS)")
        parser.add_argument("--boundary", action="store_true")
        parser.add_argument(
            "--provisioner-template",
            action="store_true",
            help=(
                "Print the CloudFormation template of the provisioner role "
                f"({provisioner.TEMPLATE}): this policy in every account, "
                "assumed by opsgate with an external id."
            ),
        )

    def handle(
        self,
        *args,
        account_id: str | None,
        boundary: bool,
        provisioner_template: bool = False,
        **options,
    ) -> None:
        conf = settings.OPSGATE
        if provisioner_template:
            document = provisioner_template_default()
        elif boundary:
            document = policies.role_boundary_policy()
        else:
            document = service_policy.opsgate_service_policy(
                account_id=account_id or aws.caller_account_id(),
                path=conf["IAM_PATH"],
                prefix=conf["POLICY_PREFIX"],
                group_name=conf["GROUP_NAME"],
                boundary_name=conf["ROLE_BOUNDARY_NAME"],
                user_boundary_name=conf["USER_BOUNDARY_NAME"],
            )
        self.stdout.write(json.dumps(document, indent=2))


def provisioner_template_default() -> dict:
    conf = settings.OPSGATE
    return provisioner.cloudformation_template(
        path=conf["IAM_PATH"],
        prefix=conf["POLICY_PREFIX"],
        group_name=conf["GROUP_NAME"],
        boundary_name=conf["ROLE_BOUNDARY_NAME"],
        user_boundary_name=conf["USER_BOUNDARY_NAME"],
    )

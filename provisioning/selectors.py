"""Reads for the pages: what a request looks like to people, how to connect
with a grant, and which EC2 instances carry a project's tag."""

from dataclasses import dataclass

from django.conf import settings

from provisioning import aws, instructions, policies
from provisioning.models import AccessRequest, Project, RequestStatus


@dataclass(frozen=True)
class Display:
    key: str  # a badge class: pending, provisioning, active, error, rejected, …
    label: str
    detail: str = ""

    @property
    def is_final(self) -> bool:
        return self.key not in {"pending", "provisioning"}


def request_display(req: AccessRequest) -> Display:
    """The status people see: an approved request is "provisioning" until the
    role's trust lists the requester, then "active" (or the worker's error)."""
    if req.status == RequestStatus.APPROVED:
        if not req.is_active_grant:
            return Display("expired", "Expired")
        if req.provisioned_at:
            return Display("active", "Active")
        role = req.role
        if role.error_is_permanent:
            return Display(
                "error",
                "Error",
                f"{role.last_error} An admin has been shown this error and can "
                "retry once it is fixed.",
            )
        return Display("provisioning", "Provisioning", role.last_error)
    if req.status == RequestStatus.PENDING:
        return Display("pending", "Waiting for approval")
    return Display(req.status, req.get_status_display())


def grant_connection(
    grant: AccessRequest, *, instance_id: str = ""
) -> instructions.Connection:
    role, account = grant.role, grant.role.account
    path = settings.OPSGATE["IAM_PATH"]
    arn = role.arn or policies.role_arn(
        account_id=account.account_id,
        path=path,
        name=role.role_name,
        partition=account.partition,
    )
    return instructions.connection(
        account_id=account.account_id,
        partition=account.partition,
        path=path,
        role_name=role.role_name,
        role_arn=arn,
        iam_user_name=grant.requester.name,
        display_name=f"{role.project.name} as {role.os_user}",
        region=settings.OPSGATE["REGION"],
        instance_id=instance_id,
    )


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    state: str
    instance_type: str


def project_instances(project: Project) -> tuple[list[Instance], str]:
    """EC2 instances tagged Project=<name> in the project's account and the
    configured region, and an error message instead when AWS cannot be read."""
    found: list[Instance] = []
    try:
        client = aws.client("ec2", project.account)
        with aws.aws_action("ec2:DescribeInstances"):
            pages = client.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "tag:Project", "Values": [project.name]}]
            )
            for page in pages:
                for reservation in page["Reservations"]:
                    for item in reservation["Instances"]:
                        tags = policies.tag_dict(item.get("Tags"))
                        found.append(
                            Instance(
                                instance_id=item["InstanceId"],
                                name=tags.get("Name", ""),
                                state=item.get("State", {}).get("Name", "unknown"),
                                instance_type=item.get("InstanceType", ""),
                            )
                        )
    except aws.AwsError as exc:
        return [], f"Could not list the instances: {exc.message}"
    return sorted(found, key=lambda i: (i.name, i.instance_id)), ""

"""Reads for the pages: what a request looks like to people, and how to
connect with a grant."""

from dataclasses import dataclass

from django.conf import settings

from accounts_app import instructions
from accounts_app.models import (
    AccessRequest,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from provisioning import policies


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
    role's trust lists the requester, then "active" (or the worker's error).
    A grant whose role is known to be missing in AWS is "being restored"."""
    if req.status == RequestStatus.APPROVED:
        if not req.is_active_grant:
            return Display("expired", "Expired")
        if req.provisioned_at and req.role.missing_since:
            return _being_restored(req.role)
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


def _being_restored(role: OperationRole) -> Display:
    """The role, or a policy it needs, was found missing in AWS (deleted
    behind opsgate's back, the account wiped): the grant does not work now."""
    detail = "The role was found missing in AWS."
    if role.error_is_permanent:
        return Display(
            "error",
            "Error",
            f"{detail} {role.last_error} An admin has been shown this error and "
            "can retry once it is fixed.",
        )
    worked_on = role.applied_version < role.desired_version
    if not (worked_on or settings.OPSGATE["RECONCILE_REPAIR"]):
        return Display("error", "Unavailable", f"{detail} An admin has been told.")
    return Display(
        "provisioning",
        "Being restored",
        f"{detail} opsgate is creating it again. {role.last_error}".strip(),
    )


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
        region=account.session_regions[0],
        instance_id=instance_id,
        identity_account_id=grant.requester.account.account_id,
    )


def person_for_role(user, role: OperationRole) -> IamUser | None:
    """The person's active IAM user in the identity account the role's
    account trusts (the one a request for that role is made as)."""
    return (
        IamUser.objects.filter(
            user=user, account=role.account.identity, state=IamUserState.ACTIVE
        )
        .select_related("account")
        .first()
    )

"""The desired trust of an operation role, in one place: who it must list,
how many characters that takes, and whether it fits AssumeRolePolicySizeQuota
(stored on the account by provisioning). The approval check and the worker's
document (provisioning.sync.role_sync) both use it."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from provisioning import policies

FULL_ON_APPROVE = (
    "Revoke unused grants, split the role, or ask AWS to raise "
    "AssumeRolePolicySizeQuota."
)
FULL_ON_PRINCIPALS = (
    "List fewer cross-account users, split the role, or ask AWS to raise "
    "AssumeRolePolicySizeQuota."
)
FULL_ON_IMPORT = (
    "List fewer users on the role, split it, or ask AWS to raise "
    "AssumeRolePolicySizeQuota."
)


def grant_holders(role_ids) -> dict[int, list[IamUser]]:
    """Active people with an active grant, by role id, in one query (pages
    showing the trust capacity of many roles pass these to trust_capacity)."""
    holders: dict[int, list[IamUser]] = {pk: [] for pk in role_ids}
    grants = AccessRequest.active_grants().filter(
        role_id__in=holders, requester__state=IamUserState.ACTIVE
    )
    for g in grants.select_related("requester__account"):
        holders[g.role_id].append(g.requester)
    return holders


def _capacity_grants(role_ids, now=None):
    now = now or timezone.now()
    return AccessRequest.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        status=RequestStatus.APPROVED,
        role_id__in=role_ids,
        requester__state=IamUserState.ACTIVE,
    )


def capacity_holders(role_ids, now=None) -> dict[int, list[IamUser]]:
    """Active people with an approved grant that has not ended, scheduled
    grants included, by role id: the most the trust will ever list at once.
    The capacity check counts these, so a scheduled grant keeps its place and
    the trust never outgrows its quota when it starts (issue 20, item 12)."""
    holders: dict[int, list[IamUser]] = {pk: [] for pk in role_ids}
    grants = _capacity_grants(holders, now)
    for g in grants.select_related("requester__account"):
        holders[g.role_id].append(g.requester)
    return holders


def capacity_holder_arns(role_ids, now=None) -> dict[int, set[str]]:
    """capacity_holders as the ARNs the trust lists them by, by role id: one
    query of plain values, for a page showing the capacity of many roles
    (building a model per grant costs it more than the query)."""
    arns: dict[int, set[str]] = {pk: set() for pk in role_ids}
    path = settings.OPSGATE["IAM_PATH"]
    rows = _capacity_grants(arns, now).values_list(
        "role_id",
        "requester__arn",
        "requester__name",
        "requester__account__account_id",
        "requester__account__partition",
    )
    for role_id, arn, name, account_id, partition in rows:
        arns[role_id].add(
            arn
            or policies.user_arn(
                account_id=account_id, path=path, name=name, partition=partition
            )
        )
    return arns


def iam_user_arn(user: IamUser) -> str:
    """The person's IAM user ARN in the identity account the roles trust
    (derived from the name until the worker has created the user)."""
    return user.arn or policies.user_arn(
        account_id=user.account.account_id,
        path=settings.OPSGATE["IAM_PATH"],
        name=user.name,
        partition=user.account.partition,
    )


def principal_arns(role: OperationRole, users) -> list[str]:
    """The trust's principals: each person's IAM user ARN (iam_user_arn) and
    the cross-account users an admin attached."""
    arns = {iam_user_arn(u) for u in users}
    return sorted(arns | set(role.extra_principal_arns or []))


def role_principals(
    role: OperationRole,
    *,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> list[str]:
    """Principal ARNs the role's trust must hold: users with an active grant
    (`holders` when the caller read them already), plus the cross-account
    users an admin attached."""
    if holders is None:
        holders = grant_holders([role.pk])[role.pk]
    users = set(holders)
    if extra_user is not None:
        users.add(extra_user)
    return principal_arns(role, users)


def trust_capacity(
    role: OperationRole,
    *,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> tuple[int, int]:
    """(characters used, characters allowed) of the role's minified trust policy,
    counting `extra_user` as if their grant were active, and every grant not
    ended, scheduled ones included (`holders`: capacity_holders, when the
    caller read them already)."""
    if holders is None:
        holders = capacity_holders([role.pk])[role.pk] if role.pk else []
    principals = role_principals(role, extra_user=extra_user, holders=holders)
    return _capacity(role, principals)


def trust_capacity_of_arns(
    role: OperationRole, *, arns: set[str], extra_user: IamUser | None = None
) -> tuple[int, int]:
    """trust_capacity from the holders' ARNs (capacity_holder_arns)."""
    principals = set(arns) | set(role.extra_principal_arns or [])
    if extra_user is not None:
        principals.add(iam_user_arn(extra_user))
    return _capacity(role, sorted(principals))


def _capacity(role: OperationRole, principals: list[str]) -> tuple[int, int]:
    used = policies.trust_policy_size(principals) if principals else 0
    return used, role.account.trust_quota


def trust_check(
    role: OperationRole,
    *,
    advice: str,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> None:
    """Refuse what would make the role's trust policy larger than IAM allows
    (the same computation the worker's document is built with)."""
    used, quota = trust_capacity(role, extra_user=extra_user, holders=holders)
    if used > quota:
        raise ValidationError(
            f"Role full: {role.role_name}'s trust policy would need {used} of "
            f"{quota} characters. {advice}"
        )

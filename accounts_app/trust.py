"""The desired trust of an operation role, in one place: who it must list,
how many characters that takes, and whether it fits AssumeRolePolicySizeQuota
(stored on the account by provisioning). The approval check and the worker's
document (provisioning.sync.role_sync) both use it."""

from typing import NamedTuple

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


class HolderAccount(NamedTuple):
    account_id: str
    partition: str


class Holder(NamedTuple):
    """What a trust lists of a person (principal_arns reads an IamUser's
    same attributes): read as plain values, not three model instances per
    grant, which cost the project page more than the rest of its roles."""

    name: str
    arn: str
    account: HolderAccount


def holding(role_ids, now=None):
    """Approved grants of these roles that have not ended, scheduled ones
    included: the most their trusts will ever list at once. The capacity
    check counts them, so a scheduled grant keeps its place and the trust
    never outgrows its quota when it starts (issue 20, item 12)."""
    now = now or timezone.now()
    return AccessRequest.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        status=RequestStatus.APPROVED,
        role_id__in=role_ids,
    ).order_by()


# What a Holder is made of, read as values of an IamUser.
HOLDER_FIELDS = ("name", "arn", "account__account_id", "account__partition")


def _holder(name, arn, account_id, partition) -> Holder:
    return Holder(name, arn, HolderAccount(account_id, partition))


def capacity_holders(role_ids, now=None) -> dict[int, list[Holder]]:
    """The active people of each role's `holding` grants, by role id, in
    one query."""
    holders: dict[int, list[Holder]] = {pk: [] for pk in role_ids}
    grants = holding(list(holders), now).filter(requester__state=IamUserState.ACTIVE)
    fields = (f"requester__{field}" for field in HOLDER_FIELDS)
    for role_id, *person in grants.values_list("role_id", *fields):
        holders[role_id].append(_holder(*person))
    return holders


def holders_of(role_ids, grants) -> dict[int, list[Holder]]:
    """capacity_holders of `holding` grants already read, as (role id,
    requester id) pairs: the people are read by id. (Joined to the grants,
    PostgreSQL read and hashed every person: 3–7 ms with 10,000 people.)"""
    holders: dict[int, list[Holder]] = {pk: [] for pk in role_ids}
    ids = {requester for _, requester in grants}
    people = IamUser.objects.filter(pk__in=ids, state=IamUserState.ACTIVE).order_by()
    found = {
        pk: _holder(*person) for pk, *person in people.values_list("pk", *HOLDER_FIELDS)
    }
    for role_id, requester in grants:
        if requester in found:
            holders[role_id].append(found[requester])
    return holders


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
    holders: list[IamUser] | list[Holder] | None = None,
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
    holders: list[IamUser] | list[Holder] | None = None,
) -> tuple[int, int]:
    """(characters used, characters allowed) of the role's minified trust policy,
    counting `extra_user` as if their grant were active, and every grant not
    ended, scheduled ones included (`holders`: capacity_holders, when the
    caller read them already)."""
    if holders is None:
        holders = capacity_holders([role.pk])[role.pk] if role.pk else []
    principals = role_principals(role, extra_user=extra_user, holders=holders)
    return _capacity(role, principals)


def _capacity(role: OperationRole, principals: list[str]) -> tuple[int, int]:
    used = policies.trust_policy_size(principals) if principals else 0
    return used, role.account.trust_quota


def trust_check(
    role: OperationRole,
    *,
    advice: str,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | list[Holder] | None = None,
) -> None:
    """Refuse what would make the role's trust policy larger than IAM allows
    (the same computation the worker's document is built with)."""
    used, quota = trust_capacity(role, extra_user=extra_user, holders=holders)
    if used > quota:
        raise ValidationError(
            f"Role full: {role.role_name}'s trust policy would need {used} of "
            f"{quota} characters. {advice}"
        )

"""Operation roles: one IAM role per (project, OS run-as user), and the
cross-account users an admin attaches to it."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts_app import naming, trust, validation
from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount, IamUser, OperationRole, Project
from accounts_app.sync_requests import desired_changed, request_sync
from accounts_app.validation import check_field, field_error

# Characters of a role's cross-account ARN list as typed: far more than any
# trust policy can hold (AssumeRolePolicySizeQuota is 2,048 by default).
MAX_PRINCIPALS_TEXT = 20_000


def principals_too_long(length: int) -> str:
    return (
        f"At most {MAX_PRINCIPALS_TEXT:,} characters of ARNs (this list has "
        f"{length:,}): a trust policy holds far fewer."
    )


def iam_path() -> str:
    return settings.OPSGATE["IAM_PATH"]


def role_name_free(
    project: Project, os_user: str, account: AwsAccount | None = None
) -> str:
    """The derived role name, or its second choice after a case-insensitive
    clash in the account."""
    taken = OperationRole.objects.filter(account=account or project.account)
    name = naming.derive_role_name(project.name, os_user, path=iam_path())
    if taken.filter(role_name__iexact=name).exists():
        name = naming.derive_role_name(project.name, os_user, path=iam_path(), salt="1")
    return name


def role_create(
    *,
    actor: Any,
    project: Project,
    os_user: str,
    role_name: str = "",
    extra_principal_arns: list[str] = (),
    account: AwsAccount | None = None,
) -> OperationRole:
    """A role of the project in `account` (default: the project's own); a
    project may have roles in several accounts, each with the same Project
    tag."""
    account = account or project.account
    if not account.holds_roles:
        raise field_error(
            "account", f"{account} holds no roles: pick an account that does."
        )
    check_field("os_user", validation.validate_os_user, os_user)
    if role_name:
        check_field(
            "role_name",
            lambda v: validation.validate_iam_role_name(v, path=iam_path()),
            role_name,
        )
    else:
        role_name = role_name_free(project, os_user, account)
    extra = _principals_valid(extra_principal_arns)
    if OperationRole.objects.filter(
        project=project, account=account, os_user=os_user
    ).exists():
        where = "" if account == project.account else f" in {account}"
        raise field_error(
            "os_user", f"{project.name} already has a role for {os_user}{where}."
        )
    if OperationRole.objects.filter(
        account=account, role_name__iexact=role_name
    ).exists():
        raise field_error(
            "role_name",
            f"A role named {role_name} already exists "
            "(names are unique regardless of case).",
        )
    if extra:
        _principals_fit(
            OperationRole(
                project=project,
                account=account,
                os_user=os_user,
                role_name=role_name,
                extra_principal_arns=extra,
            ),
            holders=[],
        )
    with transaction.atomic():
        role = OperationRole.objects.create(
            project=project,
            account=account,
            os_user=os_user,
            role_name=role_name,
            extra_principal_arns=extra,
            # No principals yet: IAM cannot hold a role without any, so "not
            # in AWS" is already the desired state.
            applied_version=0 if extra else 1,
        )
        audit_record(
            actor=actor,
            action="role.add",
            obj=role,
            project=project,
            after={
                "account": account.account_id,
                "role_name": role_name,
                "os_user": os_user,
                "extra_principal_arns": role.extra_principal_arns,
            },
        )
        if role.extra_principal_arns:
            request_sync(role)
    return role


def _principals_valid(arns) -> list[str]:
    """Each cross-account ARN checked; the sorted list without duplicates."""
    for arn in arns:
        check_field("extra_principal_arns", validation.validate_principal_arn, arn)
    return sorted(set(arns))


def _principals_fit(role: OperationRole, *, holders: list[IamUser] | None) -> None:
    try:
        trust.trust_check(role, advice=trust.FULL_ON_PRINCIPALS, holders=holders)
    except ValidationError as exc:
        raise field_error("extra_principal_arns", exc) from None


def role_principals_check(
    *,
    role: OperationRole,
    extra_principal_arns: list[str],
    account: AwsAccount | None = None,
    role_name: str = "",
) -> list[str]:
    """What an edit of a role's cross-account users would store: every ARN
    valid and the trust policy, with the people holding a grant on the role,
    within AssumeRolePolicySizeQuota. `account` and `role_name` as edited."""
    extra = _principals_valid(extra_principal_arns)
    candidate = OperationRole(
        pk=role.pk,
        account=account or role.account,
        role_name=role_name or role.role_name,
        extra_principal_arns=extra,
    )
    holders = trust.capacity_holders([role.pk])[role.pk] if role.pk else []
    _principals_fit(candidate, holders=holders)
    return extra


def role_principals_set(
    *,
    role: OperationRole,
    extra_principal_arns: list[str],
    actor: Any,
    check: bool = True,
) -> OperationRole:
    """Replace a role's cross-account users (the Django admin's edit, the
    import), checked against the trust size under the role's lock, as
    approvals are. `check=False`: the caller checks the size once it has
    added its grants too (the import)."""
    extra = _principals_valid(extra_principal_arns)
    with transaction.atomic():
        locked = (
            OperationRole.objects.select_for_update(of=("self",))
            .select_related("account", "project")
            .get(pk=role.pk)
        )
        before = sorted(locked.extra_principal_arns or [])
        if extra == before:
            return locked
        locked.extra_principal_arns = extra
        if extra and check:
            _principals_fit(locked, holders=None)
        locked.save(update_fields=["extra_principal_arns"])
        audit_record(
            actor=actor,
            action="role.principals",
            obj=locked,
            project=locked.project,
            before={"extra_principal_arns": before},
            after={"extra_principal_arns": extra},
        )
        desired_changed(locked)
    return locked

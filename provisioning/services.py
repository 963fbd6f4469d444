"""Use cases for projects, roles and access requests. Each runs in one
transaction, writes its audit row, and enqueues AWS work after commit.
No AWS writes here: the worker converges (provisioning.sync)."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app import naming, validation
from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from provisioning import aws, notifications, sync
from provisioning.audit import audit_record
from provisioning.tasks import enqueue_sync


def _iam_path() -> str:
    from django.conf import settings

    return settings.OPSGATE["IAM_PATH"]


def _field_error(field: str, error: ValidationError | str) -> ValidationError:
    message = error if isinstance(error, str) else validation.first_message(error)
    return ValidationError({field: message})


def _check(field: str, validator, value) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise _field_error(field, exc) from None


# --- Accounts -----------------------------------------------------------------


def account_get_default() -> AwsAccount:
    account = AwsAccount.objects.filter(is_default=True).first()
    if account is None:
        raise ValidationError(
            "No AWS account is configured yet. Run `manage.py opsgate_setup` "
            "or add one in the admin."
        )
    return account


def account_ensure_default(*, actor: Any = None, name: str = "") -> AwsAccount:
    """The account opsgate's own credentials belong to, found with
    sts:GetCallerIdentity the first time."""
    from django.conf import settings

    existing = AwsAccount.objects.filter(is_default=True).first()
    if existing:
        return existing
    account_id = aws.caller_account_id()
    with transaction.atomic():
        account, created = AwsAccount.objects.get_or_create(
            account_id=account_id,
            defaults={
                "name": name or settings.OPSGATE["DEFAULT_ACCOUNT_NAME"],
                "is_default": True,
            },
        )
        if created:
            audit_record(
                actor=actor,
                action="account.add",
                obj=account,
                after={"account_id": account_id, "name": account.name},
            )
            enqueue_sync(account)
    return account


# --- Projects and roles -------------------------------------------------------

# Approvers are the few people who decide a project's requests; every one of
# them is e-mailed about every request.
MAX_APPROVERS = 100
# Characters of a role's cross-account ARN list as typed: far more than any
# trust policy can hold (AssumeRolePolicySizeQuota is 2,048 by default).
MAX_PRINCIPALS_TEXT = 20_000


def principals_too_long(length: int) -> str:
    return (
        f"At most {MAX_PRINCIPALS_TEXT:,} characters of ARNs (this list has "
        f"{length:,}): a trust policy holds far fewer."
    )


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


def trust_check(
    role: OperationRole,
    *,
    advice: str,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> None:
    """Refuse what would make the role's trust policy larger than IAM allows
    (the same computation the worker's document is built with)."""
    used, quota = sync.trust_capacity(role, extra_user=extra_user, holders=holders)
    if used > quota:
        raise ValidationError(
            f"Role full: {role.role_name}'s trust policy would need {used} of "
            f"{quota} characters. {advice}"
        )


def project_create(
    *,
    actor: Any,
    name: str,
    account: AwsAccount,
    approvers: list = (),
    description: str = "",
    allowed_durations: list[int] | None = None,
    allow_permanent: bool = False,
) -> Project:
    _check("name", validation.validate_project_name, name)
    if Project.objects.filter(account=account, name=name).exists():
        raise _field_error("name", f"A project named {name!r} already exists.")
    if len(approvers) > MAX_APPROVERS:
        raise _field_error(
            "approvers", f"At most {MAX_APPROVERS} approvers per project."
        )
    durations = sorted(set(allowed_durations or Project.DEFAULT_DURATIONS))
    if any(h < 1 or h > 24 * 366 for h in durations):
        raise _field_error("allowed_durations", "Durations are 1 to 8784 hours.")
    with transaction.atomic():
        project = Project.objects.create(
            name=name,
            account=account,
            description=description,
            allowed_durations=durations,
            allow_permanent=allow_permanent,
        )
        project.approvers.set(approvers)
        audit_record(
            actor=actor,
            action="project.add",
            obj=project,
            project=project,
            after={
                "name": name,
                "approvers": [a.get_username() for a in approvers],
                "allowed_durations": durations,
                "allow_permanent": allow_permanent,
            },
        )
    return project


def role_name_free(project: Project, os_user: str) -> str:
    """The derived role name, or its second choice after a case-insensitive
    clash in the account."""
    taken = OperationRole.objects.filter(account=project.account)
    name = naming.derive_role_name(project.name, os_user, path=_iam_path())
    if taken.filter(role_name__iexact=name).exists():
        name = naming.derive_role_name(
            project.name, os_user, path=_iam_path(), salt="1"
        )
    return name


def role_create(
    *,
    actor: Any,
    project: Project,
    os_user: str,
    role_name: str = "",
    extra_principal_arns: list[str] = (),
) -> OperationRole:
    _check("os_user", validation.validate_os_user, os_user)
    if role_name:
        _check(
            "role_name",
            lambda v: validation.validate_iam_role_name(v, path=_iam_path()),
            role_name,
        )
    else:
        role_name = role_name_free(project, os_user)
    extra = _principals_valid(extra_principal_arns)
    if OperationRole.objects.filter(project=project, os_user=os_user).exists():
        raise _field_error(
            "os_user", f"{project.name} already has a role for {os_user}."
        )
    if OperationRole.objects.filter(
        account=project.account, role_name__iexact=role_name
    ).exists():
        raise _field_error(
            "role_name",
            f"A role named {role_name} already exists "
            "(names are unique regardless of case).",
        )
    if extra:
        _principals_fit(
            OperationRole(
                project=project,
                account=project.account,
                os_user=os_user,
                role_name=role_name,
                extra_principal_arns=extra,
            ),
            holders=[],
        )
    with transaction.atomic():
        role = OperationRole.objects.create(
            project=project,
            account=project.account,
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
                "role_name": role_name,
                "os_user": os_user,
                "extra_principal_arns": role.extra_principal_arns,
            },
        )
        if role.extra_principal_arns:
            enqueue_sync(role)
    return role


def _principals_valid(arns) -> list[str]:
    """Each cross-account ARN checked; the sorted list without duplicates."""
    for arn in arns:
        _check("extra_principal_arns", validation.validate_principal_arn, arn)
    return sorted(set(arns))


def _principals_fit(role: OperationRole, *, holders: list[IamUser] | None) -> None:
    try:
        trust_check(role, advice=FULL_ON_PRINCIPALS, holders=holders)
    except ValidationError as exc:
        raise _field_error("extra_principal_arns", exc) from None


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
    holders = sync.grant_holders([role.pk])[role.pk] if role.pk else []
    _principals_fit(candidate, holders=holders)
    return extra


def role_principals_set(
    *, role: OperationRole, extra_principal_arns: list[str], actor: Any
) -> OperationRole:
    """Replace a role's cross-account users (the Django admin's edit), checked
    against the trust size under the role's lock, as approvals are."""
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
        if extra:
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
        locked.bump()
        enqueue_sync(locked)
    return locked


# --- Access requests ----------------------------------------------------------


def can_approve(user: Any, project: Project) -> bool:
    return bool(
        user and user.is_active and project.approvers.filter(pk=user.pk).exists()
    )


def _snapshot(req: AccessRequest) -> dict:
    return {
        "status": req.status,
        "expires_at": req.expires_at.isoformat() if req.expires_at else None,
        "decided_by": req.decided_by.get_username() if req.decided_by else None,
    }


def request_end(
    req: AccessRequest,
    *,
    status: str,
    actor: Any,
    action: str,
    now=None,
    comment: str | None = None,
) -> None:
    """Move a locked request to an end state (cancelled, revoked, expired) with
    its audit row; the caller holds the row lock and the transaction."""
    before = _snapshot(req)
    req.transition_to(status)
    req.ended_at = now or timezone.now()
    fields = ["status", "ended_at"]
    if comment:
        req.decision_comment = comment
        fields.append("decision_comment")
    req.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=action,
        obj=req,
        project=req.role.project,
        before=before,
        after=_snapshot(req),
    )


def role_resync(role_id: int) -> None:
    """The role's trust must change: bump it and ask the worker after commit."""
    role = OperationRole.objects.select_for_update(of=("self",)).get(pk=role_id)
    role.bump()
    enqueue_sync(role)


def access_request_create(
    *,
    requester: IamUser,
    role: OperationRole,
    reason: str,
    duration_hours: int | None,
    actor: Any,
) -> AccessRequest:
    reason = (reason or "").strip()
    if not reason:
        raise _field_error("reason", "Say why you need this access.")
    if len(reason) > 2000:
        raise _field_error("reason", "At most 2,000 characters.")
    project = role.project
    if duration_hours is None:
        if not project.allow_permanent:
            raise _field_error(
                "duration_hours",
                f"{project.name} does not allow permanent access: pick a duration.",
            )
    elif duration_hours not in project.durations:
        allowed = ", ".join(f"{h} h" for h in project.durations)
        raise _field_error("duration_hours", f"Pick one of {allowed}.")
    if requester.state != IamUserState.ACTIVE:
        raise ValidationError("This person has been offboarded.")
    if requester.account_id != role.account_id:
        raise _field_error(
            "role", "This role is in another AWS account than your IAM user."
        )
    open_request = AccessRequest.objects.filter(
        requester=requester, role=role, status=RequestStatus.PENDING
    ).exists()
    if open_request:
        raise _field_error("role", "You already have a pending request for this role.")
    try:
        with transaction.atomic():
            req = AccessRequest.objects.create(
                requester=requester,
                role=role,
                reason=reason,
                duration_hours=duration_hours,
                created_by=actor,
            )
            audit_record(
                actor=actor,
                action="request.create",
                obj=req,
                project=project,
                after={
                    "role": role.role_name,
                    "reason": reason,
                    "duration_hours": duration_hours,
                },
            )
            notifications.on_commit(notifications.request_created, req.pk)
    except IntegrityError:
        raise _field_error(
            "role", "You already have a pending request for this role."
        ) from None
    return req


def _lock(access_request: AccessRequest) -> AccessRequest:
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related(
            "role__project", "role__account", "requester__user", "decided_by"
        )
        .get(pk=access_request.pk)
    )


def _decide_check(req: AccessRequest, approver: Any) -> None:
    if not can_approve(approver, req.role.project):
        raise PermissionDenied(
            f"Only an approver of {req.role.project.name} can decide this."
        )
    if req.requester.user_id == approver.pk:
        raise PermissionDenied("Nobody may decide their own request.")
    if req.status != RequestStatus.PENDING:
        by = f" by {req.decided_by.get_username()}" if req.decided_by else ""
        raise ValidationError(
            f"This request is already {req.get_status_display().lower()}{by}."
        )


def access_request_approve(
    *, access_request: AccessRequest, approver: Any, comment: str = ""
) -> AccessRequest:
    with transaction.atomic():
        req = _lock(access_request)
        _decide_check(req, approver)
        role = (
            OperationRole.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=req.role_id)
        )
        current = (
            AccessRequest.objects.select_for_update(of=("self",))
            .filter(requester=req.requester, role=role, status=RequestStatus.APPROVED)
            .first()
        )
        trust_check(role, advice=FULL_ON_APPROVE, extra_user=req.requester)
        before = _snapshot(req)
        now = timezone.now()
        req.transition_to(RequestStatus.APPROVED)
        req.decided_by, req.decided_at, req.decision_comment = (
            approver,
            now,
            comment.strip(),
        )
        req.expires_at = (
            now + timedelta(hours=req.duration_hours) if req.duration_hours else None
        )
        if current is not None:
            # An extension: the new grant replaces the current one; when both
            # are time-bound, it never ends earlier than the current one.
            if req.expires_at and current.expires_at:
                req.expires_at = max(req.expires_at, current.expires_at)
            _grant_replace(current, by=req, actor=approver, now=now)
        req.save(
            update_fields=[
                "status",
                "decided_by",
                "decided_at",
                "decision_comment",
                "expires_at",
            ]
        )
        role.bump()
        audit_record(
            actor=approver,
            action="request.approve",
            obj=req,
            project=role.project,
            before=before,
            after=_snapshot(req),
        )
        enqueue_sync(role)
        notifications.on_commit(notifications.request_decided, req.pk)
    return req


def _grant_replace(grant: AccessRequest, *, by: AccessRequest, actor: Any, now) -> None:
    """End `grant` because the approved extension `by` takes over. The person
    stays in the trust, so no session of theirs is revoked."""
    before = _snapshot(grant)
    grant.transition_to(RequestStatus.EXPIRED)
    grant.ended_at = now
    grant.decision_comment = f"Replaced by the extension #{by.pk}."
    grant.save(update_fields=["status", "ended_at", "decision_comment"])
    audit_record(
        actor=actor,
        action="request.extend",
        obj=grant,
        project=grant.role.project,
        before=before,
        after={**_snapshot(grant), "replaced_by": by.pk},
    )


def access_request_reject(
    *, access_request: AccessRequest, approver: Any, comment: str = ""
) -> AccessRequest:
    with transaction.atomic():
        req = _lock(access_request)
        _decide_check(req, approver)
        before = _snapshot(req)
        req.transition_to(RequestStatus.REJECTED)
        req.decided_by, req.decided_at = approver, timezone.now()
        req.decision_comment = comment.strip()
        req.save(
            update_fields=["status", "decided_by", "decided_at", "decision_comment"]
        )
        audit_record(
            actor=approver,
            action="request.reject",
            obj=req,
            project=req.role.project,
            before=before,
            after=_snapshot(req),
        )
        notifications.on_commit(notifications.request_decided, req.pk)
    return req


def access_request_cancel(
    *, access_request: AccessRequest, actor: Any
) -> AccessRequest:
    with transaction.atomic():
        req = _lock(access_request)
        if req.requester.user_id != actor.pk:
            raise PermissionDenied("Only the requester can cancel a request.")
        if req.status != RequestStatus.PENDING:
            raise ValidationError(
                f"This request is already {req.get_status_display().lower()}; "
                "only pending requests can be cancelled."
            )
        request_end(
            req, status=RequestStatus.CANCELLED, actor=actor, action="request.cancel"
        )
    return req


def access_request_revoke(
    *, access_request: AccessRequest, actor: Any, comment: str = ""
) -> AccessRequest:
    """End a grant: an approver of the project, a staff admin, or the requester
    ("I'm done"). The role's trust is rewritten by the worker."""
    with transaction.atomic():
        req = _lock(access_request)
        allowed = (
            req.requester.user_id == actor.pk
            or actor.is_staff
            or can_approve(actor, req.role.project)
        )
        if not allowed:
            raise PermissionDenied(
                "Only the requester, an approver of the project or "
                "an admin can end this grant."
            )
        if req.status != RequestStatus.APPROVED:
            raise ValidationError(
                f"This request is {req.get_status_display().lower()}, "
                "not an active grant."
            )
        request_end(
            req,
            status=RequestStatus.REVOKED,
            actor=actor,
            action="request.revoke",
            comment=comment.strip(),
        )
        role_resync(req.role_id)
    return req


def sync_retry(*, obj: Any, actor: Any) -> None:
    """An admin's "retry" after fixing the cause of a permanent error."""
    with transaction.atomic():
        obj.bump()
        audit_record(actor=actor, action="sync.retry", obj=obj)
        enqueue_sync(obj)

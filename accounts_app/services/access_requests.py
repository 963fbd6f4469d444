"""Access requests and grants: create, approve (or extend), reject, cancel,
revoke, and the one way every end of a request is written (request_end)."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app import notifications, trust
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.sync_requests import desired_changed
from accounts_app.validation import field_error


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
    audit_extra: dict | None = None,
    resync_role: bool = True,
) -> None:
    """Move a locked request to an end state (cancelled, revoked, expired) with
    its audit row: the one path of cancel, revoke, expiry, replacement by an
    extension, offboarding and the worker's re-check. When a grant ends, the
    role's trust must change: it is bumped and synced after commit, unless the
    caller says the trust stays (`resync_role=False`: an extension keeps the
    person in it; the worker is writing it right now). The caller holds the
    request's row lock and the transaction."""
    was_grant = req.status == RequestStatus.APPROVED
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
        after={**_snapshot(req), **(audit_extra or {})},
    )
    if was_grant and resync_role:
        role = OperationRole.objects.select_for_update(of=("self",)).get(pk=req.role_id)
        desired_changed(role)


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
        raise field_error("reason", "Say why you need this access.")
    if len(reason) > 2000:
        raise field_error("reason", "At most 2,000 characters.")
    project = role.project
    if duration_hours is None:
        if not project.allow_permanent:
            raise field_error(
                "duration_hours",
                f"{project.name} does not allow permanent access: pick a duration.",
            )
    elif duration_hours not in project.durations:
        allowed = ", ".join(f"{h} h" for h in project.durations)
        raise field_error("duration_hours", f"Pick one of {allowed}.")
    if requester.state != IamUserState.ACTIVE:
        raise ValidationError("This person has been offboarded.")
    if requester.account_id != role.account.identity.pk:
        identity = role.account.identity
        raise field_error(
            "role",
            f"This role in {role.account} trusts the IAM users of {identity}; "
            "you have none there. Ask an admin to add you.",
        )
    open_request = AccessRequest.objects.filter(
        requester=requester, role=role, status=RequestStatus.PENDING
    ).exists()
    if open_request:
        raise field_error("role", "You already have a pending request for this role.")
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
        raise field_error(
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
        trust.trust_check(role, advice=trust.FULL_ON_APPROVE, extra_user=req.requester)
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
        audit_record(
            actor=approver,
            action="request.approve",
            obj=req,
            project=role.project,
            before=before,
            after=_snapshot(req),
        )
        desired_changed(role)
        notifications.on_commit(notifications.request_decided, req.pk)
    return req


def _grant_replace(grant: AccessRequest, *, by: AccessRequest, actor: Any, now) -> None:
    """End `grant` because the approved extension `by` takes over. The person
    stays in the trust, so no session of theirs is revoked."""
    request_end(
        grant,
        status=RequestStatus.EXPIRED,
        actor=actor,
        action="request.extend",
        now=now,
        comment=f"Replaced by the extension #{by.pk}.",
        audit_extra={"replaced_by": by.pk},
        resync_role=False,
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
    return req


IMPORT_REASON = "Imported from the OperationUsersStack parameter file"


def grant_import(*, requester: IamUser, role: OperationRole, now) -> AccessRequest:
    """A permanent grant from the CDK stack's parameter file (DESIGN §6): the
    stack's trust listed the person, so it needs no approval. The importer
    checks the role's trust size and asks for its sync once per role."""
    grant = AccessRequest.objects.create(
        requester=requester,
        role=role,
        reason=IMPORT_REASON,
        duration_hours=None,
        status=RequestStatus.APPROVED,
        decided_at=now,
        created_at=now,
        decision_comment="imported",
    )
    audit_record(
        actor="import",
        action="request.import",
        obj=grant,
        project=role.project,
        after={"status": grant.status, "expires_at": None},
    )
    return grant

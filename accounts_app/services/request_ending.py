"""The end of a request: `request_end`, the one way every end is written
(cancel, revoke, expiry, replacement by an extension, offboarding, the
worker's re-check), and the requester's cancel and the revoke of a grant."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from accounts_app import approval_rules, notifications
from accounts_app.audit import audit_record
from accounts_app.models import AccessRequest, OperationRole, RequestStatus
from accounts_app.sync_requests import desired_changed


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
    # The decision comment stays the approver's; who ended it and why is apart.
    req.ended_by = actor if getattr(actor, "pk", None) else None
    req.end_comment = (comment or "").strip()
    req.save(update_fields=["status", "ended_at", "ended_by", "end_comment"])
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
    by_requester = getattr(actor, "pk", None) == req.requester.user_id
    if was_grant and action != "request.extend" and not by_requester:
        # The requester hears of a revoke or expiry (not of their own "done").
        notifications.on_commit(notifications.grant_ended, req.pk)


def _lock(access_request: AccessRequest, *, decider: Any = None) -> AccessRequest:
    """Lock the request's role, then the request: the worker's order (its
    role sync holds the role and then ends requests), so a decision racing a
    sync waits for it instead of deadlocking with it. `decider`: a person
    about to decide it; the role then says whether it is one of theirs
    (`role.decider_decides`, approval_rules.decides), in the same query."""
    # A request's role never changes: the caller's copy names it.
    role_id = access_request.role_id or (
        AccessRequest.objects.filter(pk=access_request.pk)
        .values_list("role_id", flat=True)
        .first()
    )
    # The role is read with its project and account as it is locked, and the
    # request with its requester: two small joins, not one of six tables
    # (PostgreSQL took longer to plan that than to run it). Who decided is
    # read only when a message or a snapshot names them.
    roles = OperationRole.objects.select_for_update(of=("self",)).select_related(
        "project", "account"
    )
    if decider is not None:
        decides = approval_rules.decides(decider)
        roles = roles.annotate(
            decider_decides=ExpressionWrapper(decides, output_field=BooleanField())
        )
    role = roles.get(pk=role_id)
    req = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("requester")
        .get(pk=access_request.pk)
    )
    req.role = role
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
            or approval_rules.can_decide(actor, req.role)
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

"""Deciding a pending request: approve (a grant, or an extension replacing
the current one, once the quorum is reached), reject, and the auto-approval
rules that grant at once."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts_app import approval_rules, notifications, trust
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    AccessReviewItem,
    Approval,
    OperationRole,
    RequestStatus,
)
from accounts_app.services.request_ending import _lock, _snapshot, request_end
from accounts_app.sync_requests import desired_changed
from accounts_app.validation import field_error


def _rules_snapshot(req: AccessRequest) -> dict:
    """What the approval rules add to a request's audit rows (nothing when
    the project uses none of them)."""
    extra: dict = {}
    if req.ticket:
        extra["ticket"] = req.ticket
    if req.approvals_required > 1:
        extra["approvals_required"] = req.approvals_required
    if req.starts_at:
        extra["starts_at"] = req.starts_at.isoformat()
    return extra


def _deciders(req: AccessRequest, approver: Any, *, quorum: bool) -> set[int]:
    """The ids of role_approvers(req.role) (`quorum`: the others' approvals
    count too), or as much of them as a decision needs: whether `approver`
    is one, as _lock(decider=approver) read it with the role."""
    if quorum:
        return approval_rules.role_approver_ids(req.role)
    return {approver.pk} if req.role.decider_decides else set()


def _decide_check(req: AccessRequest, approver: Any, approvers: set[int]) -> None:
    """`approvers`: the ids of role_approvers(req.role), or _deciders'."""
    allowed = bool(approver and approver.is_active and approver.pk in approvers)
    if not allowed:
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
        req = _lock(access_request, decider=approver)
        # Who may decide, read once for the check and the quorum count (with
        # a quorum of one: only whether the approver may, read with the lock).
        approvers = _deciders(req, approver, quorum=req.approvals_required > 1)
        _decide_check(req, approver, approvers)
        # The approvals given so far, read once: this approver's earlier one
        # refuses the decision, the others count towards the quorum. With a
        # quorum of one there are none: the first approval decides, and one
        # that fails rolls back with its decision.
        prior = (
            list(req.approvals.select_related("approver"))
            if req.approvals_required > 1
            else []
        )
        if any(a.approver_id == approver.pk for a in prior):
            raise ValidationError(
                "You have approved this request already: it waits for another approver."
            )
        mine = Approval.objects.create(
            access_request=req, approver=approver, comment=comment.strip()
        )
        given = approval_rules.valid_approvals(req, approvers, given=[*prior, mine])
        if len(given) < req.approvals_required:
            _approval_partial(req, approver, given)
            return req
        _grant(
            req,
            role=req.role,  # locked by _lock, then read with the request
            actor=approver,
            decided_by=approver,
            comment=comment.strip(),
            action="request.approve",
            audit_extra=_approvals_snapshot(req, given),
        )
        notifications.on_commit(notifications.request_decided, req.pk)
    return req


def _grant(
    req: AccessRequest,
    *,
    actor: Any,
    decided_by: Any,
    comment: str,
    action: str,
    audit_extra: dict,
    role: OperationRole | None = None,
) -> None:
    """Make the locked pending request a grant now: the trust must fit; its
    clock starts now (or at its scheduled start); it replaces the person's
    current grant of the role (an extension); audited; the role re-synced.
    `role`: the request's role with its account and project, when the caller
    holds its lock already."""
    if role is None:
        role = (
            OperationRole.objects.select_for_update(of=("self",))
            .select_related("account", "project")
            .get(pk=req.role_id)
        )
    current = (
        AccessRequest.objects.select_for_update(of=("self",))
        .filter(requester=req.requester, role=role, status=RequestStatus.APPROVED)
        .first()
    )
    now = timezone.now()
    if current is not None and current.starts_at and current.starts_at > now:
        # A scheduled grant gives no access yet: "extending" it would bridge
        # the gap to its start, which nobody approved (issue 20, item 10).
        raise ValidationError(
            _scheduled_refusal(current, f"{req.requester.name} has")
        )
    trust.trust_check(role, advice=trust.FULL_ON_APPROVE, extra_user=req.requester)
    before = _snapshot(req)
    req.transition_to(RequestStatus.APPROVED)
    req.decided_by, req.decided_at, req.decision_comment = decided_by, now, comment
    req.expires_at = (
        now + timedelta(hours=req.duration_hours) if req.duration_hours else None
    )
    if req.starts_at is not None:
        _scheduled_check(req, current, now)
        req.expires_at = req.starts_at + req.duration if req.duration else None
    if current is not None:
        # An extension of a started grant: the new grant replaces it; when
        # both are time-bound, it never ends earlier than the current one.
        # Both windows contain now, so the result stays within what the two
        # approvals allowed together.
        if req.expires_at and current.expires_at:
            req.expires_at = max(req.expires_at, current.expires_at)
        _grant_replace(current, by=req, actor=actor, now=now)
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
        actor=actor,
        action=action,
        obj=req,
        project=role.project,
        before=before,
        after={**_snapshot(req), **audit_extra},
    )
    desired_changed(role)


def _auto_approved(req: AccessRequest, actor: Any) -> bool:
    """When a rule of the role lists the requester and allows the duration,
    the request is a grant at once and the approvers are told. When it cannot
    be (the role's trust is full, a scheduled grant exists), it stays pending
    for the approvers, as without the rule."""
    rule = approval_rules.auto_rule_for(req)
    if rule is None:
        return False
    try:
        with transaction.atomic():
            _auto_approve(req, rule, actor)
    except ValidationError:
        req.refresh_from_db()
        return False
    return True


def _auto_approve(req: AccessRequest, rule, actor: Any) -> None:
    req.auto_approved, req.auto_rule = True, rule
    req.save(update_fields=["auto_approved", "auto_rule"])
    _grant(
        req,
        actor=actor,
        decided_by=None,
        comment=f"Auto-approved by rule {rule.name}.",
        action="request.auto_approve",
        audit_extra={**_rules_snapshot(req), "rule": rule.name},
    )
    notifications.on_commit(notifications.request_auto_approved, req.pk)


def _scheduled_refusal(window: AccessRequest, who: str) -> str:
    end = f" to {window.expires_at:%Y-%m-%d %H:%M}" if window.expires_at else ""
    return (
        f"{who} a scheduled grant of this role from "
        f"{window.starts_at:%Y-%m-%d %H:%M}{end} UTC: a request cannot extend "
        "it. Ask an approver to revoke it first, or ask again once it has "
        "started."
    )


def _scheduled_check(req: AccessRequest, current, now) -> None:
    """A scheduled grant runs from its start to start + duration; it cannot
    replace a current grant (that would end the access before the start)."""
    if current is not None:
        raise ValidationError(
            f"{req.requester.name} has access to this role now: approve the "
            "scheduled request once that grant has ended."
        )
    if req.duration and req.starts_at + req.duration <= now:
        raise ValidationError("The scheduled window of this request has passed.")


def _approvals_snapshot(req: AccessRequest, given: list) -> dict:
    extra = _rules_snapshot(req)
    if req.approvals_required > 1:
        extra["approved_by"] = [a.approver.get_username() for a in given]
    return extra


def _approval_partial(req: AccessRequest, approver: Any, given: list) -> None:
    """One approval of several: recorded and audited; the request stays
    pending and the grant (its clock included) starts at the last one."""
    audit_record(
        actor=approver,
        action="request.approval",
        obj=req,
        project=req.role.project,
        after={
            "status": req.status,
            "approvals": len(given),
            **_approvals_snapshot(req, given),
        },
    )
    notifications.on_commit(notifications.approval_partial, req.pk)


def _grant_replace(grant: AccessRequest, *, by: AccessRequest, actor: Any, now) -> None:
    """End `grant` because the approved extension `by` takes over. The person
    stays in the trust, so no session of theirs is revoked. The open access
    reviews of `grant` now review `by`: a review's revoke must reach the
    access the person holds, not the row it started on (issue 20, item 11)."""
    items = AccessReviewItem.objects.filter(
        grant=grant, decision="", review__closed_at__isnull=True
    )
    reviews = sorted(items.values_list("review_id", flat=True))
    items.update(grant=by)
    request_end(
        grant,
        status=RequestStatus.EXPIRED,
        actor=actor,
        action="request.extend",
        now=now,
        comment=f"Replaced by the extension #{by.pk}.",
        audit_extra={"replaced_by": by.pk, **({"reviews": reviews} if reviews else {})},
        resync_role=False,
    )


def access_request_reject(
    *, access_request: AccessRequest, approver: Any, comment: str = ""
) -> AccessRequest:
    with transaction.atomic():
        req = _lock(access_request, decider=approver)
        _decide_check(req, approver, _deciders(req, approver, quorum=False))
        if not comment.strip() and not req.role.project.rejection_reason_optional:
            raise field_error(
                "comment", "Say why you reject it: the requester sees this reason."
            )
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

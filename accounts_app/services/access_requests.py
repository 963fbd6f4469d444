"""Access requests and grants: create, approve (or extend), reject, cancel,
revoke, and the one way every end of a request is written (request_end)."""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app import approval_rules, notifications, trust
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    AccessReviewItem,
    Approval,
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


def access_request_create(
    *,
    requester: IamUser,
    role: OperationRole,
    reason: str,
    duration_hours: int | None,
    actor: Any,
    ticket: str = "",
    starts_at: datetime | None = None,
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
    try:
        ticket = approval_rules.ticket_clean(project, ticket)
    except ValidationError as exc:
        raise field_error("ticket", exc.messages[0]) from None
    try:
        approval_rules.schedule_check(project, starts_at, duration_hours)
    except ValidationError as exc:
        raise field_error("starts_at", exc.messages[0]) from None
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
    window = AccessRequest.objects.filter(
        requester=requester,
        role=role,
        status=RequestStatus.APPROVED,
        starts_at__gt=timezone.now(),
    ).first()
    if window is not None:
        raise field_error("role", _scheduled_refusal(window, "You have"))
    try:
        with transaction.atomic():
            req = AccessRequest.objects.create(
                requester=requester,
                role=role,
                reason=reason,
                duration_hours=duration_hours,
                created_by=actor,
                ticket=ticket,
                approvals_required=approval_rules.quorum(role),
                starts_at=starts_at,
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
                    **_rules_snapshot(req),
                },
            )
            if not _auto_approved(req, actor):
                notifications.on_commit(notifications.request_created, req.pk)
    except IntegrityError:
        raise field_error(
            "role", "You already have a pending request for this role."
        ) from None
    return req


def _lock(access_request: AccessRequest) -> AccessRequest:
    """Lock the request's role, then the request: the worker's order (its
    role sync holds the role and then ends requests), so a decision racing a
    sync waits for it instead of deadlocking with it."""
    # A request's role never changes: the caller's copy names it.
    role_id = access_request.role_id or (
        AccessRequest.objects.filter(pk=access_request.pk)
        .values_list("role_id", flat=True)
        .first()
    )
    OperationRole.objects.select_for_update(of=("self",)).filter(pk=role_id).first()
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related(
            "role__project", "role__account", "requester__user", "decided_by"
        )
        .get(pk=access_request.pk)
    )


def _decide_check(req: AccessRequest, approver: Any, approvers=None) -> None:
    """`approvers`: the ids of role_approvers(req.role), when read already."""
    if approvers is None:
        allowed = approval_rules.can_decide(approver, req.role)
    else:
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
        req = _lock(access_request)
        # Who may decide, read once for the check and the quorum count.
        approvers = approval_rules.role_approver_ids(req.role)
        _decide_check(req, approver, approvers)
        if req.approvals.filter(approver=approver).exists():
            raise ValidationError(
                "You have approved this request already: it waits for another approver."
            )
        Approval.objects.create(
            access_request=req, approver=approver, comment=comment.strip()
        )
        given = approval_rules.valid_approvals(req, approvers)
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
        req = _lock(access_request)
        _decide_check(req, approver)
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

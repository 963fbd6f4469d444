"""Break-glass (issue 13): people an admin marks for a project self-activate
one of its roles at once, for at most the project's break-glass duration,
with a mandatory reason. Every approver and admin is told at once; each use
waits for an approver to acknowledge or flag it."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts_app import approval_rules, notifications, trust
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    BreakGlassReview,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
    ReviewOutcome,
)
from accounts_app.services.request_ending import request_end
from accounts_app.sync_requests import desired_changed
from accounts_app.validation import field_error

WINDOW = timedelta(hours=24)


def may_break_glass(user: Any, project: Project) -> bool:
    return bool(
        user
        and user.is_active
        and project.allow_break_glass
        and project.break_glass_people.filter(pk=user.pk).exists()
    )


def break_glass_activate(
    *, requester: IamUser, role: OperationRole, reason: str, actor: Any
) -> AccessRequest:
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", "Say what the emergency is: approvers read it.")
    if len(reason) > 2000:
        raise field_error("reason", "At most 2,000 characters.")
    project = Project.objects.get(pk=role.project_id)
    if not project.allow_break_glass:
        raise PermissionDenied(f"{project.name} does not allow break-glass access.")
    if getattr(actor, "pk", None) != requester.user_id:
        raise PermissionDenied("Break-glass access is only for yourself.")
    if not may_break_glass(actor, project):
        raise PermissionDenied(
            f"You are not marked for break-glass access to {project.name}."
        )
    identity = role.account.identity
    if requester.account_id != identity.pk:
        # The role trusts the IAM users of its account's identity account
        # (itself in a single-account install), as a request checks.
        raise field_error(
            "role",
            f"This role in {role.account} trusts the IAM users of {identity}; "
            "you have none there. Ask an admin to add you.",
        )
    with transaction.atomic():
        # One person's uses run one at a time, so the daily cap holds.
        person = IamUser.objects.select_for_update(of=("self",)).get(pk=requester.pk)
        if person.state != IamUserState.ACTIVE:
            raise ValidationError("This person has been offboarded.")
        now = timezone.now()
        # The person's current grant is locked before the role, in the order
        # revoke and expiry take them (request, then role): no deadlock.
        _no_extension(person, role, now)
        role = (
            OperationRole.objects.select_for_update(of=("self",))
            .select_related("account", "project")
            .get(pk=role.pk)
        )
        _under_cap(person, project, now)
        trust.trust_check(role, advice=trust.FULL_ON_APPROVE, extra_user=person)
        req = AccessRequest.objects.create(
            requester=person,
            role=role,
            reason=reason,
            duration_hours=project.break_glass_hours,
            status=RequestStatus.APPROVED,
            created_at=now,
            created_by=actor,
            decided_at=now,
            decision_comment="break-glass",
            expires_at=now + timedelta(hours=project.break_glass_hours),
            break_glass=True,
            approvals_required=0,
        )
        review = BreakGlassReview.objects.create(
            access_request=req,
            due_at=now + timedelta(hours=project.break_glass_review_hours),
        )
        audit_record(
            actor=actor,
            action="request.break_glass",
            obj=req,
            project=project,
            after={
                "status": req.status,
                "role": role.role_name,
                "reason": reason,
                "expires_at": req.expires_at.isoformat(),
                "review_due_at": review.due_at.isoformat(),
            },
        )
        desired_changed(role)
        notifications.on_commit(notifications.break_glass_used, req.pk)
    return req


def _no_extension(person: IamUser, role: OperationRole, now) -> None:
    """Break-glass never extends a grant (its own or another). A grant past
    its end that the periodic task has not marked yet is ended here."""
    current = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("role__project", "requester")
        .filter(requester=person, role=role, status=RequestStatus.APPROVED)
        .first()
    )
    if current is None:
        return
    if current.expires_at and current.expires_at <= now:
        request_end(
            current,
            status=RequestStatus.EXPIRED,
            actor=None,
            action="request.expire",
            now=now,
            resync_role=False,  # the new grant bumps the role below
        )
        return
    if current.is_scheduled:
        raise ValidationError(
            "You have a scheduled grant for this role: cancel it with an approver "
            "before using break-glass."
        )
    until = (
        f" until {current.expires_at:%Y-%m-%d %H:%M} UTC" if current.expires_at else ""
    )
    raise ValidationError(
        f"You have access to this role already{until}: break-glass cannot extend it."
    )


def _under_cap(person: IamUser, project: Project, now) -> None:
    used = AccessRequest.objects.filter(
        requester=person,
        role__project=project,
        break_glass=True,
        created_at__gt=now - WINDOW,
    ).count()
    if used >= project.break_glass_daily_cap:
        raise ValidationError(
            f"Break-glass was used {used} times on {project.name} in the last 24 "
            f"hours, the most it allows ({project.break_glass_daily_cap}). Ask an "
            "approver for a normal request."
        )


def break_glass_review(
    *, review: BreakGlassReview, actor: Any, outcome: str, note: str = ""
) -> BreakGlassReview:
    """An approver of the role (never the person who used it) acknowledges
    or flags a use; a flag needs a note and is e-mailed to the admins."""
    if outcome not in ReviewOutcome.values:
        raise field_error("outcome", "Acknowledge or flag.")
    note = (note or "").strip()[:2000]
    if outcome == ReviewOutcome.FLAGGED and not note:
        raise field_error("note", "Say what is wrong with this use.")
    with transaction.atomic():
        review = (
            BreakGlassReview.objects.select_for_update(of=("self",))
            .select_related(
                "access_request__role__project", "access_request__requester"
            )
            .get(pk=review.pk)
        )
        req = review.access_request
        if req.requester.user_id == getattr(actor, "pk", None):
            raise PermissionDenied("Nobody may review their own break-glass use.")
        if not (
            getattr(actor, "is_staff", False)
            or approval_rules.can_decide(actor, req.role)
        ):
            raise PermissionDenied(
                f"Only an approver of {req.role.project.name} can review this."
            )
        if review.outcome:
            raise ValidationError(
                f"This use was already {review.get_outcome_display().lower()}."
            )
        review.outcome, review.note = outcome, note
        review.reviewed_by, review.reviewed_at = actor, timezone.now()
        review.save(update_fields=["outcome", "note", "reviewed_by", "reviewed_at"])
        audit_record(
            actor=actor,
            action=f"break_glass.{outcome}",
            obj=req,
            project=req.role.project,
            after={"outcome": outcome, "note": note},
        )
        if outcome == ReviewOutcome.FLAGGED:
            notifications.on_commit(notifications.break_glass_flagged, req.pk)
    return review


def break_glass_set(
    *,
    actor: Any,
    project: Project,
    allow: bool,
    people: list = (),
    hours: Any = 1,
    daily_cap: Any = 2,
    review_hours: Any = 24,
) -> Project:
    """Who may break glass on a project, and its limits."""

    def number(field, value, low, high):
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise field_error(field, f"A whole number from {low} to {high}.") from None
        if not low <= n <= high:
            raise field_error(field, f"From {low} to {high} (not {n}).")
        return n

    hours = number("break_glass_hours", hours, 1, 24)
    daily_cap = number("break_glass_daily_cap", daily_cap, 1, 10)
    review_hours = number("break_glass_review_hours", review_hours, 1, 24 * 14)
    people = list({p.pk: p for p in people}.values())
    if allow and not people:
        raise field_error("people", "Mark at least one person, or leave it off.")
    User = get_user_model()
    if User.objects.filter(pk__in=[p.pk for p in people], is_active=False).exists():
        raise field_error("people", "Only active people can be marked.")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = _break_glass_rules(locked)
        project.allow_break_glass = allow
        project.break_glass_hours = hours
        project.break_glass_daily_cap = daily_cap
        project.break_glass_review_hours = review_hours
        project.save(
            update_fields=[
                "allow_break_glass",
                "break_glass_hours",
                "break_glass_daily_cap",
                "break_glass_review_hours",
            ]
        )
        project.break_glass_people.set(people)
        audit_record(
            actor=actor,
            action="project.break_glass",
            obj=project,
            project=project,
            before=before,
            after=_break_glass_rules(project),
        )
    return project


def _break_glass_rules(project: Project) -> dict:
    return {
        "allow": project.allow_break_glass,
        "people": sorted(p.get_username() for p in project.break_glass_people.all()),
        "hours": project.break_glass_hours,
        "daily_cap": project.break_glass_daily_cap,
        "review_hours": project.break_glass_review_hours,
    }


def reviews_open():
    """Break-glass uses nobody has reviewed yet, the oldest deadline first."""
    return BreakGlassReview.objects.filter(outcome="").select_related(
        "access_request__role__project", "access_request__requester"
    )

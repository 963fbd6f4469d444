"""Access reviews (issue 13): an admin starts a review of standing grants; the
approvers confirm or revoke each grant of their projects on one page; at the
deadline what nobody decided is revoked or reported (the review's setting).
The result stays in the database and is exported as CSV for auditors."""

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts_app import approval_rules, chat, notifications
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    Project,
    RequestStatus,
    ReviewDecision,
)
from accounts_app.services.request_ending import request_end
from accounts_app.validation import field_error

MAX_DEADLINE_DAYS = 90


def review_start(
    *,
    actor: Any,
    deadline: datetime,
    min_age_days: int | None = None,
    projects: list = (),
    on_deadline: str = AccessReview.REPORT,
) -> AccessReview:
    if not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only an admin can start an access review.")
    now = timezone.now()
    if deadline is None or timezone.is_naive(deadline):
        raise field_error("deadline", "Give the deadline (UTC).")
    if deadline <= now:
        raise field_error("deadline", "The deadline is in the past.")
    if deadline > now + timedelta(days=MAX_DEADLINE_DAYS):
        raise field_error("deadline", f"At most {MAX_DEADLINE_DAYS} days from now.")
    if min_age_days is not None and not 0 <= min_age_days <= 3650:
        raise field_error("min_age_days", "0 to 3650 days.")
    if on_deadline not in (AccessReview.REVOKE, AccessReview.REPORT):
        raise field_error("on_deadline", "Revoke or report.")
    # Every grant not ended, scheduled ones too: an approval waiting for its
    # start is standing access all the same.
    grants = AccessRequest.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        status=RequestStatus.APPROVED,
    )
    if min_age_days is not None:
        grants = grants.filter(decided_at__lte=now - timedelta(days=min_age_days))
    if projects:
        grants = grants.filter(role__project__in=projects)
    with transaction.atomic():
        review = AccessReview.objects.create(
            created_by=actor,
            deadline=deadline,
            min_age_days=min_age_days,
            on_deadline=on_deadline,
        )
        review.projects.set(projects)
        items = AccessReviewItem.objects.bulk_create(
            AccessReviewItem(review=review, grant_id=pk)
            for pk in grants.values_list("pk", flat=True)
        )
        audit_record(
            actor=actor,
            action="review.start",
            obj=review,
            after={
                "deadline": deadline.isoformat(),
                "min_age_days": min_age_days,
                "projects": sorted(p.name for p in projects),
                "on_deadline": on_deadline,
                "grants": len(items),
            },
        )
        notifications.on_commit(notifications.review_started, review.pk)
        involved = Project.objects.filter(
            roles__requests__review_items__review=review
        ).distinct()
        for project in involved:
            chat.post(
                project,
                f"[opsgate] Access review #{review.pk} of {project.name}: "
                f"confirm or revoke its grants by {deadline:%Y-%m-%d %H:%M} UTC.",
            )
    return review


def items_for(user: Any):
    """Undecided items of open reviews that `user` may decide (never their
    own grants)."""
    return (
        AccessReviewItem.objects.filter(decision="", review__closed_at__isnull=True)
        .filter(
            grant__in=AccessRequest.objects.filter(approval_rules.decidable_by(user))
        )
        .exclude(grant__requester__user=user)
        .select_related("review", "grant__role__project", "grant__requester")
        .order_by("review__deadline", "pk")
    )


def review_decide(
    *, item: AccessReviewItem, actor: Any, decision: str, note: str = ""
) -> AccessReviewItem:
    if decision not in (ReviewDecision.CONFIRMED, ReviewDecision.REVOKED):
        raise field_error("decision", "Confirm or revoke.")
    with transaction.atomic():
        item = (
            AccessReviewItem.objects.select_for_update(of=("self",))
            .select_related("review", "grant__role__project", "grant__requester")
            .get(pk=item.pk)
        )
        grant = item.grant
        if grant.requester.user_id == getattr(actor, "pk", None):
            raise PermissionDenied("Nobody may review their own access.")
        if not approval_rules.can_decide(actor, grant.role):
            raise PermissionDenied(
                f"Only an approver of {grant.role.project.name} can review this."
            )
        if item.review.closed_at:
            raise ValidationError("This review is closed.")
        if item.decision:
            raise ValidationError(
                f"Already {item.get_decision_display().lower()} by "
                f"{item.decided_by.get_username() if item.decided_by else 'opsgate'}."
            )
        now = timezone.now()
        if decision == ReviewDecision.REVOKED:
            locked = (
                AccessRequest.objects.select_for_update(of=("self",))
                .select_related("role__project", "requester")
                .get(pk=grant.pk)
            )
            if locked.status == RequestStatus.APPROVED:
                request_end(
                    locked,
                    status=RequestStatus.REVOKED,
                    actor=actor,
                    action="request.revoke",
                    now=now,
                    comment=f"Access review #{item.review_id}. {note}".strip(),
                    audit_extra={"review": item.review_id},
                )
        item.decision, item.decided_by, item.decided_at = decision, actor, now
        item.note = (note or "").strip()[:2000]
        item.save(update_fields=["decision", "decided_by", "decided_at", "note"])
        audit_record(
            actor=actor,
            action=f"review.{decision}",
            obj=grant,
            project=grant.role.project,
            after={"review": item.review_id, "decision": decision, "note": item.note},
        )
    return item


REMIND_BEFORE = timedelta(hours=24)


def reviews_remind(*, now: datetime | None = None) -> int:
    """A day before an open review's deadline, remind (once) the approvers
    whose grants are still undecided, by e-mail and on the projects' chat."""
    now = now or timezone.now()
    due = AccessReview.objects.filter(
        closed_at__isnull=True,
        reminded_at__isnull=True,
        deadline__gt=now,
        deadline__lte=now + REMIND_BEFORE,
    )
    reminded = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            review = due.select_for_update(skip_locked=True).filter(pk=pk).first()
            if review is None:
                continue
            review.reminded_at = now
            review.save(update_fields=["reminded_at"])
            open_items = review.items.filter(decision="")
            projects = Project.objects.filter(
                roles__requests__review_items__in=open_items
            ).distinct()
            for project in projects:
                chat.post(
                    project,
                    f"[opsgate] Access review #{review.pk} ends "
                    f"{review.deadline:%Y-%m-%d %H:%M} UTC: grants of "
                    f"{project.name} are still to confirm or revoke.",
                )
            notifications.on_commit(notifications.review_reminder, review.pk)
        reminded += 1
    return reminded


def reviews_close_due(*, now: datetime | None = None) -> int:
    """Close the reviews past their deadline: undecided grants are revoked or
    reported, as the review says. Run by the periodic lifecycle task."""
    now = now or timezone.now()
    closed = 0
    due = AccessReview.objects.filter(closed_at__isnull=True, deadline__lte=now)
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            review = due.select_for_update(skip_locked=True).filter(pk=pk).first()
            if review is None:
                continue
            counts = {"revoked": 0, "reported": 0, "ended": 0}
            for item in review.items.filter(decision="").select_related("grant"):
                grant = (
                    AccessRequest.objects.select_for_update(of=("self",))
                    .select_related("role__project", "requester")
                    .get(pk=item.grant_id)
                )
                if grant.status != RequestStatus.APPROVED:
                    item.decision = ReviewDecision.ENDED
                    counts["ended"] += 1
                elif review.on_deadline == AccessReview.REVOKE:
                    request_end(
                        grant,
                        status=RequestStatus.REVOKED,
                        actor=None,
                        action="request.revoke",
                        now=now,
                        comment=f"Not reviewed by the deadline of access review "
                        f"#{review.pk}.",
                        audit_extra={"review": review.pk, "reason": "not reviewed"},
                    )
                    item.decision = ReviewDecision.REVOKED_UNREVIEWED
                    counts["revoked"] += 1
                else:
                    item.decision = ReviewDecision.UNREVIEWED
                    counts["reported"] += 1
                item.decided_at = now
                item.save(update_fields=["decision", "decided_at"])
            review.closed_at = now
            review.save(update_fields=["closed_at"])
            audit_record(actor=None, action="review.close", obj=review, after=counts)
        closed += 1
    return closed


CSV_COLUMNS = [
    "review",
    "grant",
    "person",
    "project",
    "role",
    "run_as",
    "granted_at",
    "expires_at",
    "decision",
    "decided_by",
    "decided_at",
    "note",
]


def review_csv(review: AccessReview) -> str:
    """The review's result, one row per grant, for auditors."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    items = review.items.select_related(
        "grant__role__project", "grant__requester", "decided_by"
    )
    for item in items:
        grant = item.grant
        writer.writerow(
            [
                review.pk,
                grant.pk,
                _cell(grant.requester.name),
                _cell(grant.role.project.name),
                grant.role.role_name,
                grant.role.os_user,
                grant.decided_at.isoformat() if grant.decided_at else "",
                grant.expires_at.isoformat() if grant.expires_at else "",
                item.decision or "pending",
                item.decided_by.get_username() if item.decided_by else "",
                item.decided_at.isoformat() if item.decided_at else "",
                _cell(item.note),
            ]
        )
    return out.getvalue()


def _cell(value) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text

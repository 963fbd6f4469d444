"""Time-bound access: grants and pending requests that end by themselves, and
reminders before they do. Run by the periodic task `expire_access`; every
function takes `now` so tests control the clock, and each row is claimed under
a lock, so two runs at once do the work once."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts_app import notifications
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    BreakGlassReview,
    OperationRole,
    RequestStatus,
)
from accounts_app.services import access_reviews
from accounts_app.services.request_ending import request_end
from accounts_app.sync_requests import desired_changed


def _expire(pk: int, *, now: datetime, due) -> bool:
    """Expire one request if it still matches `due` (a queryset) once locked."""
    with transaction.atomic():
        req = (
            due.select_for_update(of=("self",), skip_locked=True)
            .select_related("role__project")
            .filter(pk=pk)
            .first()
        )
        if req is None:
            return False
        request_end(
            req,
            status=RequestStatus.EXPIRED,
            actor=None,
            action="request.expire",
            now=now,
        )
    return True


def access_requests_expire(*, now: datetime | None = None) -> dict[str, int]:
    """End grants past their expiry (the worker rewrites the role's trust) and
    pending requests older than OPSGATE_PENDING_MAX_AGE_HOURS."""
    now = now or timezone.now()
    max_age = timedelta(hours=settings.OPSGATE["PENDING_MAX_AGE_HOURS"])
    grants = AccessRequest.objects.filter(
        status=RequestStatus.APPROVED, expires_at__lte=now
    )
    pending = AccessRequest.objects.filter(
        status=RequestStatus.PENDING, created_at__lte=now - max_age
    )
    return {
        "grants": sum(
            _expire(pk, now=now, due=grants)
            for pk in grants.values_list("pk", flat=True)
        ),
        "pending": sum(
            _expire(pk, now=now, due=pending)
            for pk in pending.values_list("pk", flat=True)
        ),
    }


def reminder_lead(req: AccessRequest) -> timedelta:
    """How long before expiry the reminder goes: OPSGATE_EXPIRY_REMINDER_HOURS,
    but at most a quarter of the grant, so an 8-hour grant is not reminded
    the moment it is approved."""
    lead = timedelta(hours=settings.OPSGATE["EXPIRY_REMINDER_HOURS"])
    if req.duration_hours:
        lead = min(lead, timedelta(hours=req.duration_hours) / 4)
    return lead


def grant_expiry_reminders_send(*, now: datetime | None = None) -> int:
    """Remind each requester once before their grant expires."""
    now = now or timezone.now()
    horizon = now + timedelta(hours=settings.OPSGATE["EXPIRY_REMINDER_HOURS"])
    candidates = AccessRequest.objects.filter(
        status=RequestStatus.APPROVED,
        reminder_sent_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=horizon,
    )
    sent = 0
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            req = (
                candidates.select_for_update(of=("self",), skip_locked=True)
                .select_related("requester__user", "role__project")
                .filter(pk=pk)
                .first()
            )
            if req is None or now < req.expires_at - reminder_lead(req):
                continue
            req.reminder_sent_at = now
            req.save(update_fields=["reminder_sent_at"])
            audit_record(
                actor=None,
                action="request.remind",
                obj=req,
                project=req.role.project,
                after={"expires_at": req.expires_at.isoformat()},
            )
            # Inside the transaction: if sending fails, the claim rolls back and
            # the next run tries again.
            sent += notifications.grant_expiry_reminder(req)
    return sent


def revoked_sessions_shrink(*, now: datetime | None = None) -> int:
    """Ask the worker to rewrite the session deny of roles where an entry has
    outlived MaxSessionDuration (no session it matches can still exist)."""
    now = now or timezone.now()
    due = OperationRole.objects.filter(revoked_sessions_until__lte=now)
    count = 0
    for role in due:
        with transaction.atomic():
            desired_changed(role)
        count += 1
    return count


def scheduled_grants_start(*, now: datetime | None = None) -> int:
    """Scheduled grants whose start has come: ask the worker to rewrite the
    role's trust (which lists the person only from now on), once each."""
    now = now or timezone.now()
    due = AccessRequest.objects.filter(
        status=RequestStatus.APPROVED,
        starts_at__lte=now,
        start_applied_at__isnull=True,
    )
    started = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            req = (
                due.select_for_update(of=("self",), skip_locked=True)
                .select_related("role__project")
                .filter(pk=pk)
                .first()
            )
            if req is None:
                continue
            req.start_applied_at = now
            req.save(update_fields=["start_applied_at"])
            audit_record(
                actor=None,
                action="request.start",
                obj=req,
                project=req.role.project,
                after={
                    "starts_at": req.starts_at.isoformat(),
                    "expires_at": req.expires_at.isoformat()
                    if req.expires_at
                    else None,
                },
            )
            role = OperationRole.objects.select_for_update(of=("self",)).get(
                pk=req.role_id
            )
            desired_changed(role)
        started += 1
    return started


def break_glass_overdue_notify(*, now: datetime | None = None) -> int:
    """Tell approvers and admins, once, of each break-glass use whose review
    is overdue (the dashboard shows it in red meanwhile)."""
    now = now or timezone.now()
    due = BreakGlassReview.objects.filter(
        outcome="", due_at__lte=now, overdue_notified_at__isnull=True
    )
    told = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            review = (
                due.select_for_update(of=("self",), skip_locked=True)
                .filter(pk=pk)
                .first()
            )
            if review is None:
                continue
            review.overdue_notified_at = now
            review.save(update_fields=["overdue_notified_at"])
            notifications.on_commit(
                notifications.break_glass_overdue, review.access_request_id
            )
        told += 1
    return told


def lifecycle_run(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    done = access_requests_expire(now=now)
    done["scheduled_started"] = scheduled_grants_start(now=now)
    done["break_glass_overdue"] = break_glass_overdue_notify(now=now)
    done["reviews_reminded"] = access_reviews.reviews_remind(now=now)
    done["reviews_closed"] = access_reviews.reviews_close_due(now=now)
    done["reminders"] = grant_expiry_reminders_send(now=now)
    done["session_denies"] = revoked_sessions_shrink(now=now)
    return done

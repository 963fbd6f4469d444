"""Reads for the admin dashboard and the drift page: what is out of sync
with AWS and what reconcile found."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    RequestStatus,
)
from provisioning import throttle
from provisioning.models import Drift

DASHBOARD_ROWS = 25
# The columns the dashboard's lists show (staff/dashboard.html), and no more:
# the others cost a conversion each per row.
PENDING_SHOWN = (
    "created_at",
    "requester__name",
    "requester__user__username",
    "requester__user__first_name",
    "requester__user__last_name",
    "role__os_user",
    "role__project__name",
)
EXPIRING_SHOWN = (
    "expires_at",
    "requester__name",
    "role__os_user",
    "role__project__name",
)


def reconcile_interval() -> timedelta:
    """How often beat runs reconcile (OPSGATE_RECONCILE_SECONDS)."""
    schedule = settings.CELERY_BEAT_SCHEDULE["reconcile"]["schedule"]
    return schedule if isinstance(schedule, timedelta) else timedelta(seconds=schedule)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"


def out_of_sync(model):
    """Rows of a SyncState model that are pending or in error."""
    return model.objects.filter(
        Q(error_is_permanent=True) | Q(applied_version__lt=F("desired_version"))
    )


ENDING_STEPS = (
    ("deny_written_at", "deny", "session deny"),
    ("trust_removed_at", "trust", "trust rewrite"),
    ("sessions_ended_at", "sessions", "SSM sessions"),
)


def ending(now=None) -> dict:
    """Grants the database ended that AWS may still honour (an ending step
    not done: DESIGN §4.1), oldest first, and removed cross-account users
    likewise: (count, rows). Each row says what is pending."""
    now = now or timezone.now()
    not_done = Q()
    for field, _, _ in ENDING_STEPS:
        not_done |= Q(**{f"{field}__isnull": True})
    grants = AccessRequest.ended_grants(now).filter(not_done)
    rows = []
    shown = grants.select_related("requester", "role").only(
        "ended_at",
        "expires_at",
        *(field for field, _, _ in ENDING_STEPS),
        "requester__name",
        "role__role_name",
        "role__project_id",
    )
    for g in shown.order_by(F("ended_at").asc(nulls_first=True), "pk")[:DASHBOARD_ROWS]:
        pending = [label for field, _, label in ENDING_STEPS if not getattr(g, field)]
        rows.append(
            {
                "who": g.requester.name,
                "role": g.role,
                "ended_at": g.ended_at or g.expires_at,
                "pending": pending,
            }
        )
    count = len(rows) if len(rows) < DASHBOARD_ROWS else grants.count()
    for role in OperationRole.objects.exclude(ended_principals=[]).select_related(
        "project"
    ):
        for entry in role.ended_principals or []:
            pending = [label for _, key, label in ENDING_STEPS if not entry.get(key)]
            if pending:
                count += 1
                rows.append(
                    {
                        "who": entry["arn"],
                        "role": role,
                        "ended_at": None,
                        "pending": pending,
                    }
                )
    return {"count": count, "rows": rows[:DASHBOARD_ROWS]}


def dashboard(now=None) -> dict:
    """Everything the admin dashboard shows, in a number of queries that does
    not depend on the number of rows (lists are capped at DASHBOARD_ROWS)."""
    now = now or timezone.now()
    soon = now + timedelta(hours=24)
    active = Q(status=RequestStatus.APPROVED) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    expiring = Q(
        status=RequestStatus.APPROVED, expires_at__gt=now, expires_at__lte=soon
    )
    pending = Q(status=RequestStatus.PENDING)
    # Three counts, each on a partial index (grant_expiry_idx, pending_age_idx),
    # rather than one aggregate that reads every request ever made.
    totals = {
        "active": AccessRequest.objects.filter(active).count(),
        "expiring": AccessRequest.objects.filter(expiring).count(),
        "pending": AccessRequest.objects.filter(pending).count(),
    }
    overdue_after = 2 * reconcile_interval()
    accounts = list(AwsAccount.objects.order_by("name"))
    for account in accounts:
        # Never reconciled is no alarm while the account is new: beat's first
        # run is still to come (one is asked for a minute after beat starts).
        since = account.last_reconciled_at or account.created_at
        account.reconcile_overdue = now - since > overdue_after
    unsynced_accounts = [a for a in accounts if a.sync_status != "in_sync"]
    throttled = []
    until = throttle.throttled_until([a.pk for a in accounts])
    if until:
        # What waits in each throttled account: one query per kind.
        waiting = Counter()
        for model in (IamUser, OperationRole):
            lagging = model.behind().filter(account_id__in=until)
            waiting.update(lagging.values_list("account_id", flat=True))
        for account in accounts:
            if account.pk in until:
                account.throttled_until = datetime.fromtimestamp(
                    until[account.pk], tz=UTC
                )
                account.waiting = waiting[account.pk] + (
                    account.applied_version < account.desired_version
                )
                throttled.append(account)
    users = out_of_sync(IamUser).select_related("account").order_by("name")
    roles = (
        out_of_sync(OperationRole)
        .select_related("project", "account")
        .order_by("role_name")
    )
    # Each list joins only what its rows show: a join more costs PostgreSQL
    # more to plan than the rows cost to read.
    pending_rows = list(
        AccessRequest.objects.filter(pending)
        .select_related("requester__user", "role__project")
        .only(*PENDING_SHOWN)
        .prefetch_related("role__project__approvers")
        .order_by("created_at")[:DASHBOARD_ROWS]
    )
    for req in pending_rows:
        approvers = req.role.project.approvers.all()
        req.approver_names = [a.get_username() for a in approvers]
        # Nobody may decide their own request: with no other approver it
        # waits for ever (until it expires).
        req.undecidable = not any(
            a.is_active and a.pk != req.requester.user_id for a in approvers
        )
    unsynced_users = list(users[:DASHBOARD_ROWS])
    unsynced_roles = list(roles[:DASHBOARD_ROWS])
    # Counted only past a full list.
    out_of_sync_count = len(unsynced_accounts)
    for shown, rows in ((unsynced_users, users), (unsynced_roles, roles)):
        out_of_sync_count += len(shown) if len(shown) < DASHBOARD_ROWS else rows.count()
    endings = ending(now)
    return {
        "ending": endings["rows"],
        "totals": {
            **totals,
            "ending": endings["count"],
            "out_of_sync": out_of_sync_count,
            "drift": Drift.objects.filter(resolved_at__isnull=True).count(),
        },
        "expiring": list(
            AccessRequest.objects.filter(expiring)
            .select_related("requester", "role__project")
            .only(*EXPIRING_SHOWN)
            .order_by("expires_at")[:DASHBOARD_ROWS]
        ),
        "pending": pending_rows,
        "unsynced_accounts": unsynced_accounts,
        "unsynced_users": unsynced_users,
        "unsynced_roles": unsynced_roles,
        "accounts": accounts,
        "throttled": throttled,
        "interval_text": _span(reconcile_interval()),
        "overdue_text": _span(overdue_after),
        "limit": DASHBOARD_ROWS,
        "now": now,
    }


def drift_rows(*, status: str = "", kind: str = "", account=None):
    """Drift for the drift page: open first, then the most recently seen."""
    rows = Drift.objects.select_related("account").order_by(
        F("resolved_at").desc(nulls_first=True), "-last_seen", "object_type", "name"
    )
    if status == "open":
        rows = rows.filter(resolved_at__isnull=True)
    elif status == "resolved":
        rows = rows.filter(resolved_at__isnull=False)
    if kind:
        rows = rows.filter(kind=kind)
    if account is not None:
        rows = rows.filter(account=account)
    return rows

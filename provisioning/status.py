"""Reads for the admin dashboard and the drift page: what is out of sync
with AWS and what reconcile found."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, F, Q
from django.utils import timezone

from accounts_app import counts, selectors
from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import break_glass
from provisioning import throttle
from provisioning.models import Drift

DASHBOARD_ROWS = 25
# Times given when the dashboard's counts run (accounts_app.counts).
NOW = counts.Param("now", DateTimeField())
SOON = counts.Param("soon", DateTimeField())


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


def _ending_grants(now):
    """Grants the database ended that AWS may still honour (an ending step
    not done: DESIGN §4.1)."""
    not_done = Q()
    for field, _, _ in ENDING_STEPS:
        not_done |= Q(**{f"{field}__isnull": True})
    return AccessRequest.ended_grants(now).filter(not_done)


def _expiring(now, soon) -> Q:
    return Q(status=RequestStatus.APPROVED, expires_at__gt=now, expires_at__lte=soon)


PENDING = Q(status=RequestStatus.PENDING)

# The dashboard's totals in one statement, each a count on a partial index
# (grant_expiry_idx, pending_age_idx, ending_open_idx, iam_user_unsynced_idx;
# one aggregate over the requests read every request ever made). A list is
# read only when its total is not 0.
TOTALS = counts.Counts(
    lambda: {
        "active": AccessRequest.objects.filter(
            Q(status=RequestStatus.APPROVED)
            & (Q(expires_at__isnull=True) | Q(expires_at__gt=NOW.expression))
        ),
        "expiring": AccessRequest.objects.filter(
            _expiring(NOW.expression, SOON.expression)
        ),
        "pending": AccessRequest.objects.filter(PENDING),
        "drift": Drift.objects.filter(resolved_at__isnull=True),
        "users_out_of_sync": out_of_sync(IamUser),
        "roles_out_of_sync": out_of_sync(OperationRole),
        "ending_grants": _ending_grants(NOW.expression),
        "ended_principals": OperationRole.objects.exclude(ended_principals=[]),
        "break_glass": break_glass.reviews_open(),
    }
)


def ending(now, totals: dict) -> dict:
    """Grants the database ended that AWS may still honour, oldest first,
    and removed cross-account users likewise: (count, rows). Each row says
    what is pending. `totals`: the dashboard's (TOTALS); a list whose total
    is 0 is not read."""
    rows = _ending_grant_rows(now) if totals["ending_grants"] else []
    principals = _ended_principal_rows() if totals["ended_principals"] else []
    return {
        "count": totals["ending_grants"] + len(principals),
        "rows": (rows + principals)[:DASHBOARD_ROWS],
    }


def _ending_grant_rows(now) -> list[dict]:
    shown = (
        _ending_grants(now)
        .select_related("requester", "role")
        .only(
            "ended_at",
            "expires_at",
            *(field for field, _, _ in ENDING_STEPS),
            "requester__name",
            "role__role_name",
            "role__project_id",
        )
    )
    rows = []
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
    return rows


def _ended_principal_rows() -> list[dict]:
    rows = []
    ended = OperationRole.objects.exclude(ended_principals=[])
    for role in ended.select_related("project"):
        for entry in role.ended_principals or []:
            pending = [label for _, key, label in ENDING_STEPS if not entry.get(key)]
            if pending:
                rows.append(
                    {
                        "who": entry["arn"],
                        "role": role,
                        "ended_at": None,
                        "pending": pending,
                    }
                )
    return rows


def _pending_rows() -> list[dict]:
    """The oldest pending requests, as values (the dashboard's columns and
    no more), with their project's approvers."""
    rows = (
        AccessRequest.objects.filter(PENDING)
        .order_by("created_at")
        .values_list(
            "pk",
            "created_at",
            "requester__name",
            "requester__user_id",
            "requester__user__first_name",
            "requester__user__last_name",
            "role__os_user",
            "role__project_id",
            "role__project__name",
        )[:DASHBOARD_ROWS]
    )
    shown = []
    for pk, created, name, user_id, first, last, os_user, project_id, project in rows:
        shown.append(
            {
                "pk": pk,
                "created_at": created,
                "person": name,
                "user_id": user_id,
                "full_name": f"{first} {last}".strip(),
                "os_user": os_user,
                "project_id": project_id,
                "project": project,
            }
        )
    approvers = selectors.approvers_of(
        Project.approvers, {r["project_id"] for r in shown}
    )
    for row in shown:
        found = approvers[row["project_id"]]
        row["approver_names"] = ", ".join(a.username for a in found)
        # Nobody may decide their own request: with no other approver it
        # waits for ever (until it expires).
        row["undecidable"] = not any(
            a.is_active and a.user_id != row["user_id"] for a in found
        )
    return shown


def _expiring_rows(now, soon) -> list[dict]:
    rows = (
        AccessRequest.objects.filter(_expiring(now, soon))
        .order_by("expires_at")
        .values_list(
            "pk",
            "expires_at",
            "requester__name",
            "role__os_user",
            "role__project__name",
        )[:DASHBOARD_ROWS]
    )
    return [
        {"pk": pk, "expires_at": ends, "person": who, "os_user": os_user, "project": p}
        for pk, ends, who, os_user, p in rows
    ]


def dashboard(now=None) -> dict:
    """Everything the admin dashboard shows, in a number of queries that does
    not depend on the number of rows (lists are capped at DASHBOARD_ROWS)."""
    now = now or timezone.now()
    soon = now + timedelta(hours=24)
    totals = TOTALS(now=now, soon=soon)
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
    unsynced_users = []
    if totals["users_out_of_sync"]:
        users = out_of_sync(IamUser).select_related("account").order_by("name")
        unsynced_users = list(users[:DASHBOARD_ROWS])
    unsynced_roles = []
    if totals["roles_out_of_sync"]:
        roles = out_of_sync(OperationRole).select_related("project", "account")
        unsynced_roles = list(roles.order_by("role_name")[:DASHBOARD_ROWS])
    endings = ending(now, totals)
    return {
        "ending": endings["rows"],
        "totals": {
            "active": totals["active"],
            "expiring": totals["expiring"],
            "pending": totals["pending"],
            "ending": endings["count"],
            "out_of_sync": len(unsynced_accounts)
            + totals["users_out_of_sync"]
            + totals["roles_out_of_sync"],
            "drift": totals["drift"],
            "break_glass": totals["break_glass"],
        },
        "expiring": _expiring_rows(now, soon) if totals["expiring"] else [],
        "pending": _pending_rows() if totals["pending"] else [],
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

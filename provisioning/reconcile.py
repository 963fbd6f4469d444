"""Reconcile: read an account in bulk, compare it with the database, record
drift and repair what opsgate owns (DESIGN §4).

One paginated GetAccountAuthorizationDetails reads every user, group, role and
customer-managed policy. Objects changed or synced within
OPSGATE_RECONCILE_QUIET_SECONDS are left alone (IAM reads are eventually
consistent, and the worker is on them). Repair bumps the object and runs its
sync (provisioning.sync), after the removals the sync does not do: extra
attached or inline policies and extra tags with keys opsgate owns. Nothing
without opsgate's path (and, except for the group, ManagedBy=opsgate) is
touched. Reading and comparing: provisioning.drift_checks.
"""

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from accounts_app import counters
from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount, IamUser, IamUserState, OperationRole
from provisioning import aws, baseline, drift_checks, recovery, sync
from provisioning.aws import AwsError
from provisioning.drift_checks import Finding, Report
from provisioning.models import Drift

log = logging.getLogger(__name__)


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


# --- Recording and repairing --------------------------------------------------


def _record(
    account: AwsAccount, findings: list[Finding], skipped: list[str], now: datetime
) -> None:
    seen = set()
    with transaction.atomic():
        open_rows = {
            (d.object_type, d.name, d.kind): d
            for d in Drift.objects.select_for_update().filter(
                account=account, resolved_at__isnull=True
            )
        }
        for f in findings:
            seen.add(f.key)
            values = {
                "detail": f.detail,
                "expected": f.expected,
                "actual": f.actual,
                "repairable": f.repairable,
                "last_seen": now,
            }
            row = open_rows.get(f.key)
            if row is None:
                Drift.objects.create(
                    account=account,
                    object_type=f.object_type,
                    name=f.name,
                    kind=f.kind,
                    first_seen=now,
                    **values,
                )
            else:
                Drift.objects.filter(pk=row.pk).update(**values)
        left_alone = set(skipped)
        gone = [
            row.pk
            for key, row in open_rows.items()
            if key not in seen and f"{key[0]} {key[1]}" not in left_alone
        ]
        Drift.objects.filter(pk__in=gone).update(resolved_at=now)


SYNCS = {
    AwsAccount: lambda obj: sync.account_baseline_sync(account_id=obj.pk),
    IamUser: lambda obj: sync.iam_user_sync(iam_user_id=obj.pk),
    OperationRole: lambda obj: sync.role_sync(role_id=obj.pk),
}


def _repair(
    account: AwsAccount,
    client: Any,
    findings: list[Finding],
    report: Report,
    now,
    retry: Iterable[Model] = (),
) -> None:
    by_object: dict[Model, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.repairable and f.obj is not None:
            by_object[f.obj].append(f)
    for obj in retry:
        by_object[obj] = []  # no drift: only the sync is tried again
    # The baseline first, then users (roles' trusts name them), then roles.
    order = {AwsAccount: 0, IamUser: 1, OperationRole: 2}
    for obj in sorted(by_object, key=lambda o: (order[type(o)], o.pk)):
        fixes = by_object[obj]
        label = f"{type(obj).__name__} {obj}"
        try:
            for f in fixes:
                if f.fix is not None:
                    f.fix(client)
            with transaction.atomic():
                error = obj.last_error
                obj.bump()
                audit_record(
                    actor=None,
                    action="reconcile.repair" if fixes else "reconcile.retry",
                    obj=obj,
                    after={
                        "drift": [f"{f.object_type} {f.name}: {f.kind}" for f in fixes]
                    }
                    if fixes
                    else {"error": error},
                )
            SYNCS[type(obj)](obj)
        except AwsError as exc:
            report.errors.append(f"{label}: {exc.message}")
            log.warning("reconcile could not repair %s: %s", label, exc.message)
            continue
        keys = [f.key for f in fixes]
        for object_type, name, kind in keys:
            Drift.objects.filter(
                account=account,
                object_type=object_type,
                name=name,
                kind=kind,
                resolved_at__isnull=True,
            ).update(repaired_at=now)
        (report.repaired if fixes else report.retried).append(label)


# The first key of PostgreSQL advisory locks taken by reconcile (the second is
# the account's pk): "opsg" in ASCII.
LOCK_NAMESPACE = 0x6F707367
# Without PostgreSQL (the demo's SQLite): a cache entry, expiring in case the
# process holding it dies.
LOCK_SECONDS = 3600


@contextlib.contextmanager
def account_lock(account_id: int) -> Iterator[bool]:
    """One reconcile per account at a time (issue 21: two at once died on the
    open-drift constraint). Yields whether the lock is ours. PostgreSQL: a
    session advisory lock, which the server releases if the worker dies."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, account_id]
            )
            got = bool(cursor.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)",
                        [LOCK_NAMESPACE, account_id],
                    )
        return
    key = f"opsgate:reconcile-lock:{account_id}"
    got = cache.add(key, 1, timeout=LOCK_SECONDS)
    try:
        yield got
    finally:
        if got:
            cache.delete(key)


def reconcile_account(
    account: AwsAccount, *, repair: bool | None = None, now: datetime | None = None
) -> Report:
    """Compare one account with the database, record drift, repair by default.
    While another reconcile of the account runs, do nothing (report `busy`)."""
    with account_lock(account.pk) as ours:
        if not ours:
            log.info(
                "reconcile of account %s skipped: another reconcile of it is running",
                account,
            )
            return Report(account=str(account), busy=True)
        started = time.monotonic()
        report = _reconcile_account(account, repair=repair, now=now)
        counters.value_set(
            reconcile_seconds_key(account.pk), round(time.monotonic() - started, 3)
        )
        return report


def reconcile_seconds_key(account_pk: int) -> str:
    """The counters entry holding the last reconcile's duration (/metrics)."""
    return f"reconcile_seconds:{account_pk}"


def _reconcile_account(
    account: AwsAccount, *, repair: bool | None, now: datetime | None
) -> Report:
    now = now or timezone.now()
    account = AwsAccount.objects.get(pk=account.pk)
    repair = _conf("RECONCILE_REPAIR") if repair is None else repair
    since = now - timedelta(seconds=_conf("RECONCILE_QUIET_SECONDS"))
    if account.objects_missing_at and account.objects_missing_at > since:
        # A sync found opsgate's objects missing: what was synced before may
        # be gone too, however recently.
        since = account.objects_missing_at
    client = aws.client("iam", account)
    state = drift_checks.read_account(client)
    report = Report(account=str(account))
    people = list(IamUser.objects.filter(account=account).select_related("account"))
    # A removed record only matters while no newer active one holds the name.
    active_names = {p.name.lower() for p in people if p.state == IamUserState.ACTIVE}
    people = [
        p
        for p in people
        if p.state == IamUserState.ACTIVE or p.name.lower() not in active_names
    ]
    roles = list(
        OperationRole.objects.filter(account=account).select_related(
            "account", "project"
        )
    )
    findings: list[Finding] = []
    if drift_checks.quiet(account, since):
        report.skipped.append(f"account {account.name}")
    else:
        findings += drift_checks.check_baseline(account, state)
    findings += drift_checks.check_users(people, state, since, report)
    findings += drift_checks.check_roles(roles, state, since, report)
    findings += drift_checks.check_unknown(account, people, roles, state)
    report.found = findings
    skipped = list(report.skipped)
    if any(s.startswith("account ") for s in skipped):
        skipped += [f"group {_conf('GROUP_NAME')}"] + [
            f"policy {n}"
            for n in [
                *baseline.baseline_documents(account),
                _conf("ROLE_BOUNDARY_NAME"),
                _conf("USER_BOUNDARY_NAME"),
            ]
        ]
    _record(account, findings, skipped, now)
    drift_checks.note_missing_roles(findings, now)
    if repair:
        stopped = drift_checks.stopped_without_drift(
            [account, *people, *roles], findings, since
        )
        with recovery.reconciling(account.pk):
            _repair(account, client, findings, report, now, retry=stopped)
    AwsAccount.objects.filter(pk=account.pk).update(
        last_reconciled_at=now,
        trust_policy_quota=sync.read_trust_policy_quota(client, account),
    )
    return report


def reconcile_or_report(
    account: AwsAccount, *, repair: bool | None = None, retry_later: bool = True
) -> dict[str, Any]:
    """One account's summary; an account opsgate cannot read (its provisioner
    role cannot be assumed, access denied) is reported in it and recorded on
    the account, instead of stopping the reconcile of the others. A transient
    error (throttling, AWS not answering) is raised for the task to retry,
    unless `retry_later` is False (then reported too)."""
    try:
        summary = reconcile_account(account, repair=repair).summary()
    except aws.RetryLater as exc:
        if retry_later:
            raise
        return _unreachable(account, exc)
    except AwsError as exc:
        return _unreachable(account, exc)
    reach_record(account, error="")
    return summary


def _unreachable(account: AwsAccount, exc: AwsError) -> dict[str, Any]:
    log.warning("reconcile of %s failed: %s", account, exc.message)
    reach_record(account, error=exc.message)
    report = Report(account=str(account), errors=[exc.message])
    return {**report.summary(), "unreachable": True}


def reach_record(account: AwsAccount, *, error: str) -> None:
    AwsAccount.objects.filter(pk=account.pk).update(
        reach_error=error[:2000], reach_checked_at=timezone.now()
    )


def reconcile_all(*, repair: bool | None = None) -> list[dict[str, Any]]:
    """Every account in turn (the periodic task runs them in parallel:
    provisioning.tasks.reconcile_accounts)."""
    return [
        reconcile_or_report(account, repair=repair, retry_later=False)
        for account in AwsAccount.objects.all()
    ]

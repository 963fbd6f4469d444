"""The one way the desired state asks for AWS work.

request_sync(obj) records when it asked and, once the transaction commits,
sends the `sync_requested` signal; provisioning connects its Celery tasks to
it (ProvisioningConfig.ready), so accounts_app never imports the worker. When
the broker is down the change is already saved and the periodic sweep
publishes it later.
"""

from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts_app.audit import audit_record

# Sent after commit with sender=the model class, pk=the object's id and
# claimed=whether request_sync took the object's task lease.
sync_requested = Signal()
# Sent at once: an admin asks for a reconcile of every account; a receiver
# raises when the worker cannot be reached, and the caller says so.
reconcile_requested = Signal()


def _send(model, pk: int, claimed: bool) -> None:
    sync_requested.send(sender=model, pk=pk, claimed=claimed)


def request_sync(obj, *, bump: bool = False) -> None:
    """Ask the worker to make `obj` match the database, once the current
    transaction commits (immediately outside one); `bump`: its desired state
    changed too (Model.bump, in the same UPDATE).

    The object's task lease (SyncState.sync_lease_until: a task is queued or
    waiting to retry) is taken here, in the caller's transaction and by the
    same UPDATE that records the request, when nobody holds it; the UPDATE
    returns whether it took it (it holds the row until the commit). The
    receiver then only publishes (and gives the lease back if the broker is
    down), with no write and no commit of its own after the caller's."""
    model = type(obj)
    now = timezone.now()
    until = now + timedelta(seconds=settings.OPSGATE["SWEEP_GRACE_SECONDS"])
    ops = connection.ops
    claimed, obj.desired_version, permanent = _sync_requested(
        model,
        bump,
        {
            "pk": obj.pk,
            "now": ops.adapt_datetimefield_value(now),
            "until": ops.adapt_datetimefield_value(until),
            "no": False,
        },
    )
    obj.error_is_permanent = bool(permanent)  # SQLite answers 0 or 1
    if claimed:
        obj.sync_lease_until = until
    transaction.on_commit(partial(_send, model, obj.pk, bool(claimed)))


def _sync_requested(model, bump: bool, params: dict) -> tuple:
    """The UPDATE of request_sync, written out: one statement that returns
    what the caller needs (the ORM's would be an UPDATE and a SELECT, and
    compiling its CASE cost more than running both)."""
    bumped = (
        ", desired_version = desired_version + 1, error_is_permanent = %(no)s"
        if bump
        else ""
    )
    sql = (
        f"UPDATE {connection.ops.quote_name(model._meta.db_table)} "
        "SET sync_requested_at = %(now)s, sync_lease_until = CASE"
        " WHEN sync_lease_until IS NULL OR sync_lease_until < %(now)s"
        " THEN %(until)s ELSE sync_lease_until END"
        f"{bumped} WHERE {model._meta.pk.column} = %(pk)s"
        " RETURNING sync_lease_until = %(until)s, desired_version,"
        " error_is_permanent"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def desired_changed(obj) -> None:
    """The object's desired state changed: bump its version and ask for a
    sync, in one UPDATE (the caller holds the transaction, and the row lock
    if it needs one)."""
    request_sync(obj, bump=True)


def reconcile_request() -> None:
    """Ask the worker to reconcile every account now; raises when it cannot."""
    reconcile_requested.send(sender=None)


def sync_retry(*, obj: Any, actor: Any) -> None:
    """An admin's "retry" after fixing the cause of a permanent error."""
    with transaction.atomic():
        audit_record(actor=actor, action="sync.retry", obj=obj)
        desired_changed(obj)

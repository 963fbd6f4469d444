"""Celery tasks: load by id, call one sync function, let retries handle the rest.

Enqueueing happens after commit and never fails the caller: when the broker is
down the change is already saved, and the periodic sweep publishes it later.
"""

import logging
import random
from datetime import timedelta
from functools import partial

from celery import shared_task
from celery.signals import beat_init
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts_app.models import AwsAccount, IamUser, OperationRole
from accounts_app.services import lifecycle
from provisioning import baseline, notify, readiness, reconcile, sync, throttle
from provisioning.aws import AwsError, PermanentError, RetryLater
from provisioning.chat import post_chat  # noqa: F401 - the worker registers it here

# (Importing notify registers its send_notification task with the worker too.)

log = logging.getLogger(__name__)


def _backoff(retries: int) -> float:
    """Exponential backoff with full jitter, capped at five minutes."""
    return random.uniform(1, min(300, 2 ** (retries + 2)))


def _run(task, model, function, pk: int) -> None:
    """Run one sync of `model` `pk` under its lease (see sync_claim): at most
    one task per object is queued or waiting to retry, whatever the sweep and
    new changes do. An account AWS throttles waits without calling it."""
    state = (
        model.objects.filter(pk=pk)
        .order_by()  # one row: not the model's ordering (a join for a role)
        .values_list(
            "desired_version", "applied_version", "last_error", _ACCOUNT_ID[model]
        )
        .first()
    )
    if state is None or (state[1] >= state[0] and not state[2]):
        # Nothing to do: the object is gone or converged (a duplicate of a
        # task that already ran, from a sweep after a long backlog).
        sync_release(model, pk)
        return
    started_at, account_pk = state[0], state[3]
    wait, backing_off = throttle.account_state(account_pk)
    if wait and not task.request.is_eager:  # run inline (tests): nothing to wait for
        _defer(task, model, pk, wait + random.uniform(0, 1))
        return
    try:
        function(**{_ID_ARGS[model]: pk})
    except PermanentError:
        # Recorded on the object and shown to the admin; retrying cannot help.
        sync_release(model, pk)
        return
    except (RetryLater, DatabaseError) as exc:
        # An ending step that waits for IAM propagation says when to come back.
        countdown = getattr(exc, "countdown", None) or _backoff(task.request.retries)
        if throttle.is_throttling(exc):
            countdown = max(countdown, throttle.note(account_pk))
        _lease(model, pk, countdown)
        raise task.retry(
            exc=exc,
            countdown=countdown,
            max_retries=settings.OPSGATE["TASK_MAX_RETRIES"],
        ) from exc
    if backing_off:  # else there is no backoff to reset
        throttle.succeeded(account_pk)
    # Changed while this task ran (it read the older state): go again now
    # rather than at the next sweep.
    if _release_changed(model, pk, started_at or 0):
        sync_publish(model, pk)


def _lease(model, pk: int, seconds: float) -> None:
    """The object's task is due in `seconds`: the sweep leaves it alone until
    then and for the grace after."""
    until = timezone.now() + timedelta(
        seconds=seconds + settings.OPSGATE["SWEEP_GRACE_SECONDS"]
    )
    model.objects.filter(pk=pk).update(sync_lease_until=until)


def _defer(task, model, pk: int, seconds: float) -> None:
    """Come back when the account's backoff ends, without calling AWS and
    without using up a retry; the lease follows."""
    _lease(model, pk, seconds)
    task.apply_async(args=[pk], countdown=seconds)


def sync_claim(model, pk: int) -> bool:
    """Take the object's lease if nobody holds it (a conditional UPDATE, so of
    two publishers exactly one wins). False: a task is already on its way."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.OPSGATE["SWEEP_GRACE_SECONDS"])
    return bool(
        model.objects.filter(pk=pk)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_until=until)
    )


def sync_release(model, pk: int) -> None:
    model.objects.filter(pk=pk).update(sync_lease_until=None)


def _release_changed(model, pk: int, seen: int) -> bool:
    """sync_release, and whether the object's desired version moved past
    `seen` and is not applied yet: one UPDATE that answers (written out: the
    ORM's would be an UPDATE and a query)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET sync_lease_until = NULL"
            f" WHERE {model._meta.pk.column} = %s RETURNING"
            " applied_version < desired_version AND desired_version > %s",
            [pk, seen],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def sync_publish(model, pk: int) -> bool:
    """Publish the object's sync unless a task for it is already queued or
    waiting to retry. The lease is given back when the broker is down, so the
    sweep publishes it later."""
    if not sync_claim(model, pk):
        return False
    if _publish(TASKS[model], pk):
        return True
    sync_release(model, pk)
    return False


@shared_task(bind=True, acks_late=True)
def sync_account(self, account_id: int) -> None:
    _run(self, AwsAccount, sync.account_baseline_sync, account_id)


@shared_task(bind=True, acks_late=True)
def sync_iam_user(self, iam_user_id: int) -> None:
    _run(self, IamUser, sync.iam_user_sync, iam_user_id)


@shared_task(bind=True, acks_late=True)
def sync_role(self, role_id: int) -> None:
    _run(self, OperationRole, sync.role_sync, role_id)


TASKS = {AwsAccount: sync_account, IamUser: sync_iam_user, OperationRole: sync_role}
# The keyword each sync function takes, and the field naming an object's account.
_ID_ARGS = {AwsAccount: "account_id", IamUser: "iam_user_id", OperationRole: "role_id"}
# The column holding an object's account id (an account's own: its pk).
_ACCOUNT_ID = {AwsAccount: "pk", IamUser: "account_id", OperationRole: "account_id"}
_ACCOUNT_FIELD = {
    AwsAccount: "pk__in",
    IamUser: "account_id__in",
    OperationRole: "account_id__in",
}


def _publish(task, pk: int, **options) -> bool:
    try:
        task.apply_async(args=[pk], **options)
        return True
    except Exception as exc:  # the broker is down: the sweep will retry
        log.warning("could not enqueue %s(%s), the sweep will: %s", task.name, pk, exc)
        notify.broker_failed()  # the change's e-mail goes inline at once
        return False


def on_sync_requested(sender, pk: int, claimed: bool = False) -> None:
    """accounts_app asked for a sync of an object (after its commit); a task
    already queued or waiting to retry reads the new state when it runs.
    `claimed`: the request took the lease in its own transaction (see
    accounts_app.sync_requests.request_sync), so publish without a claim."""
    if not claimed:
        sync_publish(sender, pk)
    elif not _publish(TASKS[sender], pk):
        sync_release(sender, pk)


def on_reconcile_requested() -> None:
    """An admin asked for a reconcile now; raises when the broker is down."""
    reconcile_accounts.apply_async()


def enqueue_reconcile(account_id: int) -> None:
    """Ask the worker to reconcile one account once the current transaction
    commits (immediately outside one)."""
    transaction.on_commit(partial(_publish, reconcile_account, account_id))


def _sweep_interval() -> float:
    schedule = settings.CELERY_BEAT_SCHEDULE["sweep"]["schedule"]
    return schedule.total_seconds() if isinstance(schedule, timedelta) else schedule


@shared_task(acks_late=True)
def sweep() -> dict[str, int]:
    """Re-enqueue everything whose applied version is behind and that nobody
    asked for recently: the safety net for a broker outage or a lost task.
    Also asks for a look at the baseline of every account the database has in
    sync (has AWS lost it?)."""
    now = timezone.now()
    published: dict[str, int] = {}
    accounts = {a.pk: a for a in AwsAccount.objects.all()}
    for account in accounts.values():
        if (
            account.applied_version >= account.desired_version
            and not baseline.baseline_is_current(account)
        ):
            # A release or a setting changed the baseline documents.
            account.desired_version += 1
            account.save(update_fields=["desired_version"])
    throttled = list(throttle.throttled_until(list(accounts)))
    for model in TASKS:
        # A missing permissions boundary waits for the deployment step, not
        # for an admin's retry: look again (two GetPolicy calls) every sweep.
        model.objects.filter(
            error_is_permanent=True, last_error__startswith=sync.BOUNDARY_MISSING
        ).update(error_is_permanent=False)
        due = (
            model.behind()
            .filter(error_is_permanent=False)
            .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
            .exclude(**{_ACCOUNT_FIELD[model]: throttled})
        )
        pks = list(due.values_list("pk", flat=True))
        sent = [pk for pk in pks if sync_publish(model, pk)]
        model.objects.filter(pk__in=sent).update(sync_requested_at=now)
        published[model.__name__] = len(sent)
    published["baseline_checks"] = _check_baselines()
    return published


def _check_baselines() -> int:
    """One check_baseline per account whose baseline is in sync; a check not
    started before the next sweep is dropped (that sweep sends another)."""
    interval = _sweep_interval()
    accounts = [a for a in AwsAccount.objects.all() if baseline.baseline_is_current(a)]
    return sum(_publish(check_baseline, a.pk, expires=interval) for a in accounts)


@shared_task(acks_late=True)
def check_baseline(account_id: int) -> None:
    """Is the account's operators group still in AWS? If not, the baseline is
    converged again and the account reconciled (provisioning.sync)."""
    try:
        settle = timedelta(seconds=_sweep_interval())
        sync.account_baseline_check(account_id=account_id, settle=settle)
    except AwsError as exc:  # AWS not answering: the next sweep looks again
        log.warning("baseline check of account %s failed: %s", account_id, exc)


@shared_task(acks_late=True)
def expire_access() -> dict[str, int]:
    """End expired grants and stale requests; remind before expiry."""
    return lifecycle.lifecycle_run()


@shared_task(acks_late=True)
def reconcile_accounts() -> list[dict]:
    """Compare every account with the database; record and repair drift.
    One account is reconciled here; several are fanned out as one
    reconcile_account task each, so they run in parallel on the workers and
    the whole takes about the time of the slowest account."""
    pks = list(AwsAccount.objects.values_list("pk", flat=True))
    if len(pks) <= 1:
        return reconcile.reconcile_all()
    return [{"account_id": pk, "queued": _publish(reconcile_account, pk)} for pk in pks]


@shared_task(bind=True, acks_late=True)
def reconcile_account(self, account_id: int) -> dict:
    """One account: its share of the periodic reconcile, or at once when a
    sync found opsgate's objects missing there. An unreachable account is
    reported in the summary and on the account page."""
    account = AwsAccount.objects.get(pk=account_id)
    try:
        return reconcile.reconcile_or_report(account)
    except RetryLater as exc:
        raise self.retry(
            exc=exc,
            countdown=_backoff(self.request.retries),
            max_retries=settings.OPSGATE["TASK_MAX_RETRIES"],
        ) from exc


# --- Readiness (issue 25) ----------------------------------------------------


@shared_task(bind=True, acks_late=True)
def check_readiness(self, grant_ids: int | list[int]) -> None:
    """Read back what AWS holds for grants: the ones a role's sync made active
    (one task for them all, their role read once) or one grant (Check
    again; a single id is what tasks queued by older releases carry). Checks
    that may fail only because IAM has not propagated yet come back with a
    countdown (within READINESS_PROPAGATION_SECONDS), for those grants only;
    run inline (tests) they are recorded at once."""
    wait, waiting = readiness.grants_readiness_run(
        grant_ids=grant_ids if isinstance(grant_ids, list) else [grant_ids],
        attempt=self.request.retries,
        retry=not self.request.is_eager,
    )
    if wait:
        raise self.retry(args=[waiting], countdown=wait, max_retries=None)


def on_readiness_requested(grant_ids: list[int]) -> bool:
    """accounts_app asked for the check of these grants (after its commit)."""
    return _publish(check_readiness, grant_ids)


# Beat's first reconcile comes one interval after it starts (an hour by
# default): a fresh install, or AWS after a restart, is checked this soon
# instead. Objects synced within the quiet period are left alone anyway.
FIRST_RECONCILE_AFTER_SECONDS = 60


@beat_init.connect
def reconcile_soon_after_beat_starts(sender=None, **kwargs) -> None:
    try:
        reconcile_accounts.apply_async(countdown=FIRST_RECONCILE_AFTER_SECONDS)
    except Exception as exc:  # the broker is down: the hourly run will come
        log.warning("could not ask for the first reconcile: %s", exc)

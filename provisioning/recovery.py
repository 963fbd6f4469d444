"""Recovery: AWS lost what opsgate made. Asking for a reconcile of an account
at once, and marking its baseline out of sync; provisioning.sync notices the
losses, provisioning.tasks delivers the requests."""

import contextlib
import logging
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q
from django.dispatch import Signal
from django.utils import timezone

from accounts_app.models import AwsAccount

log = logging.getLogger(__name__)


def _conf(key: str):
    return settings.OPSGATE[key]


#
# An account wiped, a sandbox restored, a wrong `terraform destroy`: the
# database still says "in sync". What notices: the sweep's look at the
# operators group (account_baseline_check), a NoSuchEntity on a call that names
# another of opsgate's objects (DependencyMissing), a user or role that had to
# be created again. Each marks the baseline out of sync and/or asks for a
# reconcile of the account at once; a repaired baseline gives the objects that
# failed permanently one more try.

# Sent with account_id when an account needs a reconcile at once;
# provisioning.tasks enqueues it after commit (this module never imports tasks).
reconcile_needed = Signal()

_reconciling: ContextVar[frozenset[int]] = ContextVar(
    "opsgate_reconciling", default=frozenset()
)


@contextlib.contextmanager
def reconciling(account_id: int):
    """Inside a reconcile of the account, the syncs it runs ask for no other."""
    token = _reconciling.set(_reconciling.get() | {account_id})
    try:
        yield
    finally:
        _reconciling.reset(token)


def account_reconcile_request(*, account_id: int, reason: str) -> bool:
    """opsgate's objects are missing in the account: reconcile it now instead of
    at the next hourly run. One request at a time: another is made once a
    reconcile has run since, or after RECONCILE_QUIET_SECONDS (the first may
    have been lost with the broker). Returns True when it asked."""
    if account_id in _reconciling.get():
        return False
    now = timezone.now()
    stale = now - timedelta(seconds=_conf("RECONCILE_QUIET_SECONDS"))
    asked = (
        AwsAccount.objects.filter(pk=account_id)
        .filter(
            Q(objects_missing_at__isnull=True)
            | Q(objects_missing_at__lt=stale)
            | Q(last_reconciled_at__gte=F("objects_missing_at"))
        )
        .update(objects_missing_at=now)
    )
    if asked:
        log.warning("account %s: %s; reconciling the account now", account_id, reason)
        reconcile_needed.send(sender=AwsAccount, account_id=account_id)
    return bool(asked)


def baseline_mark_missing(*, account_id: int, since: datetime) -> bool:
    """Part of the baseline is gone although the database has it in sync: mark
    it out of sync, unless it already is or a sync converged it after `since`
    (when the caller started looking). Returns True when it marked it."""
    marked = (
        AwsAccount.objects.filter(
            pk=account_id, applied_version__gte=F("desired_version")
        )
        .filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=since))
        .update(desired_version=F("desired_version") + 1, error_is_permanent=False)
    )
    return bool(marked)


def note_recreated(obj: Model, new_id: str) -> None:
    """A user or role the database had in AWS came back with another id: it
    had to be created again, so AWS lost it, and likely more of opsgate's
    objects there. Ask for a reconcile of the account once this commits."""
    believed = obj.unique_id and getattr(obj, "exists_in_aws", True)
    if believed and new_id and new_id != obj.unique_id:
        account_id, reason = obj.account_id, f"{obj} was missing in AWS"
        transaction.on_commit(
            lambda: account_reconcile_request(account_id=account_id, reason=reason)
        )

"""Issue 21 item 7: two reconciles of one account never run at once (they
died on the open-drift constraint); the second skips with a log line."""

import logging
import threading

import pytest
from django.db import connections

from accounts_app.models import AwsAccount
from provisioning import reconcile, sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def baseline(aws_env, account):
    sync.account_baseline_sync(account_id=account.pk)
    return account


@pytest.fixture
def held_elsewhere():
    """Hold an account's reconcile lock from another process's connection (a
    second worker in the middle of its reconcile)."""
    stop = threading.Event()
    ready = threading.Event()

    def hold(account_id: int) -> threading.Thread:
        def run():
            conn = connections["default"]  # this thread's own connection
            try:
                with reconcile.account_lock(account_id) as ours:
                    assert ours
                    ready.set()
                    stop.wait(30)
            finally:
                conn.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(10)
        return thread

    threads: list = []
    yield lambda pk: threads.append(hold(pk))
    stop.set()
    for t in threads:
        t.join(10)


def test_a_second_reconcile_of_the_same_account_skips_with_a_log_line(
    baseline, held_elsewhere, caplog
):
    held_elsewhere(baseline.pk)
    with caplog.at_level(logging.INFO, logger="provisioning.reconcile"):
        report = reconcile.reconcile_account(baseline)
    assert report.busy
    assert report.summary()["busy"] is True
    assert "another reconcile of it is running" in caplog.text
    assert AwsAccount.objects.get(pk=baseline.pk).last_reconciled_at is None


def test_the_lock_is_per_account_and_released_after_a_run(baseline):
    with reconcile.account_lock(baseline.pk + 1000) as ours:
        assert ours  # another account's lock does not block this one
        report = reconcile.reconcile_account(baseline)
    assert not report.busy
    assert AwsAccount.objects.get(pk=baseline.pk).last_reconciled_at is not None
    with reconcile.account_lock(baseline.pk) as ours:
        assert ours  # released by the run

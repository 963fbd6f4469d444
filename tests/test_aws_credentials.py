"""Issue 21 item 7: temporary AWS credentials that run out are a reason to
retry with fresh ones, not a permanent error; assumed-role clients are rebuilt
before their credentials' own expiry."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from accounts_app.models import OperationRole, SyncStatus
from provisioning import aws, sync, tasks
from provisioning.aws import RetryLater
from tests.faults import injected

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"]
)
def test_expired_credentials_are_retried_with_a_fresh_client(approved, code):
    account = approved.role.account
    with injected(account) as faults:
        faults.fail("CreateRole", code, "The security token included has expired")
        stale = aws.client("iam", account)
        with pytest.raises(RetryLater) as info:
            sync.role_sync(role_id=approved.role_id)
    assert info.value.code == code
    assert aws.client("iam", account) is not stale  # the cached client is dropped
    role = OperationRole.objects.get(pk=approved.role_id)
    assert not role.error_is_permanent
    assert role.sync_status == SyncStatus.PENDING


def test_the_task_retries_after_expired_credentials_and_the_role_is_created(approved):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "ExpiredToken", "expired")
        tasks.sync_role.apply(args=[approved.role_id])
    role = OperationRole.objects.get(pk=approved.role_id)
    assert role.sync_status == SyncStatus.IN_SYNC
    assert role.last_error == ""


@pytest.fixture
def clock(monkeypatch):
    now = SimpleNamespace(value=datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    monkeypatch.setattr(aws.clients, "_now", lambda: now.value)
    return now


@pytest.fixture
def assumed(monkeypatch, clock, aws_env):
    """An account reached through a provisioner role whose credentials last
    `lifetime` (AssumeRole's DurationSeconds or a role chain can make it short)."""
    sessions: list = []
    lifetime = SimpleNamespace(value=timedelta(hours=1))

    def session(account, region=""):
        sessions.append(clock.value)
        expires_at = clock.value + lifetime.value
        return aws.clients._Bound("us-east-1", {}, expires_at=expires_at)

    monkeypatch.setattr(aws.clients, "_session", session)
    aws.reset_clients()
    account = SimpleNamespace(
        pk=991, assume_role_arn="arn:aws:iam::444444444444:role/p", external_id=""
    )
    return account, sessions, lifetime


def test_an_assumed_role_client_is_rebuilt_before_its_credentials_expire(
    assumed, clock
):
    account, sessions, lifetime = assumed
    lifetime.value = timedelta(minutes=20)
    first = aws.client("iam", account)
    clock.value += timedelta(minutes=9)
    assert aws.client("iam", account) is first
    clock.value += timedelta(minutes=2)  # 11 minutes: 9 left, under the margin
    assert aws.client("iam", account) is not first
    assert len(sessions) == 2


def test_hour_long_credentials_are_renewed_fifteen_minutes_before_expiry(
    assumed, clock
):
    account, sessions, _ = assumed
    first = aws.client("iam", account)
    clock.value += timedelta(minutes=44)
    assert aws.client("iam", account) is first
    clock.value += timedelta(minutes=1, seconds=1)
    assert aws.client("iam", account) is not first

"""Redis, the broker, restarts under a running worker (issue 21, point 1).

Reported: Redis stopped (SIGTERM) for 20 s while a worker held an
unacknowledged task; the worker logged "Connection to broker lost", then
"Unrecoverable error: AttributeError('NoneType' object has no attribute
'hostname')" while restoring that task, and exited: nothing was provisioned
until someone restarted it. Celery 5.7.0 closes the broken connection a second
time after collecting it, and kombu's Redis channel, whose first close failed
half-way, then needs a new connection pool from a transport already detached
(docs/security.md). Here a worker runs against a Redis of the test's own,
a role sync is in flight (acks_late: unacknowledged) when Redis goes away,
Redis comes back empty on the same port, and the next approval is provisioned
by the same worker process."""

import time

import pytest

from accounts_app.models import AccessRequest, OperationRole, SyncStatus
from accounts_app.services import roles
from provisioning import policies
from tests.helpers import arn, request
from tests.workers import ROOT, RedisServer, Worker, approve_in_a_web_process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLOW_SECONDS = 6  # CreateRole's time: the first sync is in flight a while
DOWN_SECONDS = 8


@pytest.fixture
def broker(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def slow_worker(aws_env, broker):
    worker = Worker(
        "broker-restart",
        env={
            "PYTHONPATH": str(ROOT / "tests" / "slowaws"),
            "OPSGATE_TEST_SLOW_AWS_OPS": "CreateRole",
            "OPSGATE_TEST_SLOW_AWS_SECONDS": str(SLOW_SECONDS),
        },
        broker_url=broker.url(),
    ).wait_ready()
    yield worker
    worker.stop()


def provisioned(req) -> bool:
    return AccessRequest.objects.get(pk=req.pk).provisioned_at is not None


def test_the_same_worker_provisions_the_next_approval_after_redis_restarts_mid_task(
    broker, slow_worker, iam, carol, dave, bob, alice, deploy_role, payments
):
    ops_role = roles.role_create(actor=alice.user, project=payments, os_user="ops")
    first, second = request(carol, deploy_role), request(dave, ops_role)
    pid = slow_worker.stats()["pid"]
    assert pid == slow_worker.proc.pid

    # The first approval's role sync is running (CreateRole takes a while),
    # its message unacknowledged, when Redis is stopped.
    approve_in_a_web_process(first, broker.url())
    assert wait_for(
        lambda: "provisioning.tasks.sync_role" in slow_worker.log(), timeout=30
    ), slow_worker.log()
    broker.stop()
    assert wait_for(
        lambda: "Connection to broker lost" in slow_worker.log(), timeout=30
    ), slow_worker.log()
    time.sleep(DOWN_SECONDS)
    assert slow_worker.proc.poll() is None, slow_worker.log()
    broker.start()  # empty: no persistence, as the report's Redis

    # The worker reconnects by itself; the next approval reaches it.
    assert wait_for(lambda: slow_worker.stats().get("pid") == pid, timeout=60), (
        slow_worker.log()
    )
    approve_in_a_web_process(second, broker.url())
    assert wait_for(lambda: provisioned(second), timeout=60), slow_worker.log()
    role = iam.get_role(RoleName=OperationRole.objects.get(pk=ops_role.pk).role_name)
    assert role["Role"]["AssumeRolePolicyDocument"] == policies.trust_policy(
        [arn("user", "dave")]
    )
    # The sync in flight during the outage finished too (its steps converge).
    assert wait_for(lambda: provisioned(first), timeout=60), slow_worker.log()
    assert OperationRole.objects.get(pk=deploy_role.pk).sync_status == (
        SyncStatus.IN_SYNC
    )

    # All of it by the one worker process that was running before.
    assert slow_worker.proc.poll() is None
    assert slow_worker.stats()["pid"] == pid
    assert "Unrecoverable error" not in slow_worker.log()

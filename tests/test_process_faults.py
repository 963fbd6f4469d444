"""Faults across processes: the broker down while an approver approves, and a
worker killed with SIGKILL in the middle of provisioning a role."""

import socket
import time

import pytest

from accounts_app.models import AccessRequest, OperationRole, SyncStatus
from accounts_app.services import access_requests
from provisioning import tasks
from tests.workers import (
    ROOT,
    RedisServer,
    Worker,
    approve_in_a_web_process,
    free_port,
    reset_broker,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pending(aws_env, carol, bob, deploy_role):
    return access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="release",
        duration_hours=8,
        actor=carol.user,
    )


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never answers (a hung broker)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def spare_redis(tmp_path):
    """A Redis server of this test's own, to freeze with SIGSTOP (the kernel
    still accepts connections; nothing answers): (port, pid)."""
    server = RedisServer(tmp_path)
    yield server.port, server.proc.pid
    server.stop()


@pytest.mark.parametrize("broker", ["refused", "hung", "frozen"])
def test_approval_is_saved_quickly_when_the_broker_is_down_and_the_sweep_delivers_it(
    pending, settings, request, iam, broker
):
    freeze_pid = 0
    if broker == "refused":
        port = free_port()
    elif broker == "hung":
        port = request.getfixturevalue("silent_port")
    else:
        port, freeze_pid = request.getfixturevalue("spare_redis")
    elapsed = approve_in_a_web_process(
        pending, f"redis://127.0.0.1:{port}/0", freeze_pid
    )

    print(f"approve with the broker {broker}: {elapsed:.2f}s")
    assert elapsed < 8, f"approve took {elapsed}s with the broker down"
    req = AccessRequest.objects.get(pk=pending.pk)
    assert req.status == "approved"
    role = OperationRole.objects.get(pk=req.role_id)
    assert role.sync_status == SyncStatus.PENDING
    with pytest.raises(Exception, match="NoSuchEntity|cannot be found"):
        iam.get_role(RoleName=role.role_name)

    # The broker is back: the periodic sweep re-enqueues and a worker converges.
    reset_broker()
    settings.OPSGATE = {**settings.OPSGATE, "SWEEP_GRACE_SECONDS": 0}
    time.sleep(0.01)
    assert tasks.sweep()["OperationRole"] == 1
    worker = Worker("sweep").wait_ready()
    try:
        assert wait_for(lambda: AccessRequest.objects.get(pk=req.pk).provisioned_at)
    finally:
        worker.stop()
    assert OperationRole.objects.get(pk=role.pk).sync_status == SyncStatus.IN_SYNC


def test_a_worker_killed_mid_provisioning_converges_after_restart(pending, bob, iam):
    reset_broker()
    slow = Worker(
        "slow",
        env={
            "PYTHONPATH": str(ROOT / "tests" / "slowaws"),
            "OPSGATE_TEST_SLOW_AWS_OPS": "CreateRole",
            "OPSGATE_TEST_SLOW_AWS_SECONDS": "30",
            "CELERY_VISIBILITY_TIMEOUT": "3",
        },
    ).wait_ready()
    access_requests.access_request_approve(access_request=pending, approver=bob.user)
    role = OperationRole.objects.get(pk=pending.role_id)

    # The user exists in AWS, the role call is in flight: kill everything.
    assert wait_for(lambda: "sync_role" in slow.log() and _user_exists(iam, "carol"))
    time.sleep(0.5)
    slow.kill()
    assert OperationRole.objects.get(pk=role.pk).sync_status == SyncStatus.PENDING
    assert not iam.list_roles(PathPrefix="/opsgate/")["Roles"]

    # Redelivery (acks_late): a restarted worker restores unacknowledged
    # messages older than the visibility timeout (3 s here) when it starts.
    time.sleep(4)
    fresh = Worker("fresh", env={"CELERY_VISIBILITY_TIMEOUT": "3"}).wait_ready()
    try:
        assert wait_for(
            lambda: AccessRequest.objects.get(pk=pending.pk).provisioned_at, timeout=60
        ), fresh.log()
    finally:
        fresh.stop()
    assert OperationRole.objects.get(pk=role.pk).sync_status == SyncStatus.IN_SYNC
    roles = iam.list_roles(PathPrefix="/opsgate/")["Roles"]
    assert [r["RoleName"] for r in roles] == [role.role_name]


def _user_exists(iam, name: str) -> bool:
    try:
        iam.get_user(UserName=name)
        return True
    except iam.exceptions.NoSuchEntityException:
        return False

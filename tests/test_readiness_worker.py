"""Readiness with a real Celery worker (issue 25): the check follows the role's
convergence on its own, a check that may fail only from IAM propagation comes
back through the task's retry countdown and then passes, and bench/ready.py
runs at a tiny size."""

import boto3
import pytest

from accounts_app.models import AccessRequest, ReadinessState
from accounts_app.services import access_requests
from bench import ready as ready_bench
from provisioning import sync
from tests.readiness_sim import register_mfa
from tests.workers import Worker, reset_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ready_worker(aws_env):
    reset_broker()
    started = Worker("ready", env={"OPSGATE_READINESS_CHECKS": "true"}).wait_ready()
    yield started
    started.stop()


def test_a_check_failing_from_propagation_is_retried_by_the_worker_then_ready(
    ready_worker, bob, carol, deploy_role, readiness_on
):
    sync.account_baseline_sync(account_id=deploy_role.account_id)
    sync.iam_user_sync(iam_user_id=carol.pk)
    register_mfa("carol")
    iam = boto3.client("iam", region_name="us-east-1")
    # As if IAM had not propagated carol's membership yet.
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="r",
        duration_hours=8,
        actor=carol.user,
    )
    grant = access_requests.access_request_approve(
        access_request=req, approver=bob.user
    )

    # The worker converges the role, then checks: not in the group, retried.
    assert wait_for(
        lambda: AccessRequest.objects.filter(
            pk=grant.pk, provisioned_at__isnull=False
        ).exists(),
        timeout=60,
    )
    assert wait_for(
        lambda: (
            "Retry in" in ready_worker.log_path.read_text()
            or "retry: Retry in" in ready_worker.log_path.read_text()
        ),
        timeout=60,
    ), ready_worker.log_path.read_text()[-3000:]
    assert AccessRequest.objects.get(pk=grant.pk).readiness_state == "checking"

    iam.add_user_to_group(GroupName="opsgate-operators", UserName="carol")
    assert wait_for(
        lambda: (
            AccessRequest.objects.get(pk=grant.pk).readiness_state
            == ReadinessState.READY
        ),
        timeout=90,
    ), ready_worker.log_path.read_text()[-3000:]
    after = AccessRequest.objects.get(pk=grant.pk)
    assert after.ready_at >= after.provisioned_at


def test_the_approval_to_ready_benchmark_runs(ready_worker, account):
    # One instance per project: the OS-user document runs in moto's Run
    # Command simulation.
    figures = ready_bench.measure(3, instances=1, timeout=120)
    assert figures["ready"] == 3, figures
    assert figures["ready_p50_s"] >= figures["active_p50_s"]
    calls = ready_bench.calls_of_one_check()
    assert "iam:ListMFADevices" in calls and "ssm:SendCommand" in calls, calls

"""AWS loses everything opsgate made, under a running worker and beat: after
an outage, a fresh empty endpoint answers on the same address (an account
wiped, a sandbox restored). With default settings but a short sweep interval
and no admin action, everything is back within two sweep intervals of AWS
answering again (issue 9, point 6). Prints the seconds it took."""

import time
import urllib.request

import boto3
import pytest

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    SyncStatus,
)
from accounts_app.services import access_requests, projects
from accounts_app.services import roles as role_services
from provisioning import aws, baseline, policies
from tests.conftest import _person, deploy_boundaries
from tests.helpers import arn
from tests.workers import Worker, reset_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SWEEP_SECONDS = 10
GROUP = "opsgate-operators"
BOUNDARY = "opsgate-OperationRoleBoundary"


class Endpoint:
    """opsgate's AWS for this test: a moto server of its own that can go away
    and come back, empty, on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.server = None
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()
        self.port = self.server.get_host_and_port()[1]

    def stop(self) -> None:
        self.server.stop()
        self.server._server.server_close()  # free the port for the next one


@pytest.fixture
def endpoint(aws_env, monkeypatch):
    """The worker (and this process) use the test's own endpoint."""
    found = Endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", found.url)
    aws.reset_clients()
    yield found
    found.stop()


@pytest.fixture
def worker_with_beat(endpoint):
    reset_broker()
    worker = Worker(
        "recovery",
        env={
            "AWS_ENDPOINT_URL": endpoint.url,
            "OPSGATE_SWEEP_SECONDS": str(SWEEP_SECONDS),
        },
        beat=True,
    ).wait_ready()
    yield worker
    worker.stop()


def missing_in_aws(iam, account, people, roles) -> list[str]:
    """What AWS lacks of the database's state (empty: all back)."""
    gaps = []

    def absent(call, **kwargs):
        try:
            return call(**kwargs)
        except iam.exceptions.NoSuchEntityException:
            return None

    for name in [*baseline.baseline_documents(account), BOUNDARY]:
        if not absent(iam.get_policy, PolicyArn=arn("policy", name)):
            gaps.append(f"policy {name}")
    if not absent(iam.get_group, GroupName=GROUP):
        return [*gaps, "group"]
    members = {u["UserName"] for u in iam.get_group(GroupName=GROUP)["Users"]}
    group_policies = {
        p["PolicyArn"]
        for p in iam.list_attached_group_policies(GroupName=GROUP)["AttachedPolicies"]
    }
    if group_policies != set(baseline.group_policy_arns(account)):
        gaps.append("group policies")
    for person in people:
        if person not in members:
            gaps.append(f"user {person}")
    for name, principals in roles.items():
        role = absent(iam.get_role, RoleName=name)
        if role is None:
            gaps.append(f"role {name}")
            continue
        role = role["Role"]
        if role["AssumeRolePolicyDocument"] != policies.trust_policy(principals):
            gaps.append(f"trust of {name}")
        if role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn") != arn(
            "policy", BOUNDARY
        ):
            gaps.append(f"boundary of {name}")
        attached = {
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        }
        if attached != set(baseline.role_policy_arns(account)):
            gaps.append(f"policies of {name}")
    return gaps


def all_in_sync() -> bool:
    objects = [*AwsAccount.objects.all(), *IamUser.objects.all()]
    objects += list(OperationRole.objects.all())
    return all(o.sync_status == SyncStatus.IN_SYNC for o in objects) and not (
        AccessRequest.active_grants().filter(provisioned_at__isnull=True).exists()
    )


def test_everything_is_back_within_two_sweeps_of_a_wiped_aws_answering_again(
    endpoint, worker_with_beat, account, moto_server
):
    alice = _person(account, "alice", staff=True)
    bob, carol, dave = (_person(account, n) for n in ("bob", "carol", "dave"))
    payments = projects.project_create(
        actor=alice.user, name="payments", account=account, approvers=[bob.user]
    )
    deploy, ops = (
        role_services.role_create(actor=alice.user, project=payments, os_user=os_user)
        for os_user in ("deploy", "ops")
    )
    for person, role in ((carol, deploy), (dave, deploy), (carol, ops)):
        req = access_requests.access_request_create(
            requester=person,
            role=role,
            reason="ops",
            duration_hours=8,
            actor=person.user,
        )
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    people = ["alice", "bob", "carol", "dave"]
    roles = {
        "payments-deploy": [arn("user", "carol"), arn("user", "dave")],
        "payments-ops": [arn("user", "carol")],
    }
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint.url)
    assert wait_for(all_in_sync, timeout=60), worker_with_beat.log()
    assert missing_in_aws(iam, account, people, roles) == []

    # AWS goes away; the sweep's baseline check fails and changes nothing.
    endpoint.stop()
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).read()  # moto's state is global
    assert wait_for(
        lambda: "baseline check of account" in worker_with_beat.log(),
        timeout=3 * SWEEP_SECONDS,
    ), worker_with_beat.log()
    assert all_in_sync()

    # A fresh, empty AWS answers on the same address, and the deployment step
    # puts back the two permissions boundaries (the deployment's, which
    # opsgate may not write); everything else is opsgate's to restore.
    endpoint.start()
    aws.reset_clients()
    deploy_boundaries()
    answering = time.monotonic()
    assert "group" in missing_in_aws(iam, account, people, roles)
    assert wait_for(
        lambda: not missing_in_aws(iam, account, people, roles),
        timeout=4 * SWEEP_SECONDS,
        interval=0.25,
    ), (missing_in_aws(iam, account, people, roles), worker_with_beat.log())
    seconds = time.monotonic() - answering

    print(
        f"AWS wiped: everything back {seconds:.1f} s after AWS answered again "
        f"(sweep every {SWEEP_SECONDS} s)"
    )
    assert seconds <= 2 * SWEEP_SECONDS
    assert wait_for(all_in_sync, timeout=30)
    assert not OperationRole.objects.exclude(missing_since=None).exists()
    assert not IamUser.objects.filter(error_is_permanent=True).exists()

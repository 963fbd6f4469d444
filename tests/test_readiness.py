"""Readiness (issue 25): a grant is Ready only when AWS holds what the person
needs to get in; each failure says what is wrong and what to do.

The checks run against moto (with DescribeInstanceInformation and the Run
Command simulation of the OS-user documents from provisioning.moto_ext; the
documents created by the deployment step, tests/readiness_sim.py); failing AWS
calls are injected with real error codes.
"""

import json
from datetime import timedelta

import boto3
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts_app.models import AccessRequest, ReadinessState
from accounts_app.services import access_requests, projects
from accounts_app.services import readiness as readiness_service
from provisioning import aws, moto_ext, os_users, readiness, sync
from tests.faults import Faults, injected
from tests.helpers import run_instance
from tests.readiness_sim import (
    break_os_user_runs,
    deploy_documents,
    give_os_users,
    os_users_on,
    real_ssm,
    register_mfa,
)
from tests.test_accounts import hub, world  # noqa: F401, F811 (the accounts fixtures)
from tests.test_least_privilege import as_opsgate  # noqa: F401, F811 (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ssm_sim(monkeypatch, aws_env, readiness_on):
    """moto's SSM for opsgate, with the OS-user documents deployed."""
    real_ssm(monkeypatch)
    deploy_documents()


@pytest.fixture
def ec2(aws_env):
    return boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def grant(approved, ssm_sim):
    """carol's grant, converged: the role's trust lists her."""
    sync.role_sync(role_id=approved.role_id)
    return AccessRequest.objects.get(pk=approved.pk)


def run(grant, **kwargs) -> AccessRequest:
    readiness.grant_readiness_run(grant_id=grant.pk, retry=False, **kwargs)
    return AccessRequest.objects.get(pk=grant.pk)


def checks(grant) -> dict[str, dict]:
    return {c["key"]: c for c in grant.readiness_checks}


def failed(grant) -> dict[str, dict]:
    return {k: c for k, c in checks(grant).items() if not c["ok"]}


def test_a_grant_with_mfa_role_and_an_instance_holding_the_os_user_is_ready(
    grant, ec2, ssm_sim
):
    register_mfa("carol")
    instance = run_instance(ec2, "payments", "web-1")
    give_os_users(ec2, instance, "deploy")

    after = run(grant)

    assert after.readiness_state == ReadinessState.READY, failed(after)
    assert after.ready_at is not None and after.readiness_checked_at is not None
    assert set(checks(after)) == {
        "iam_user",
        "operators_group",
        "mfa",
        "trust",
        "role_setup",
        "instances",
    }
    (row,) = checks(after)["instances"]["rows"]
    assert row["instance_id"] == instance and row["state"] == readiness.READY
    assert readiness_service.time_to_ready(after) == after.ready_at - after.decided_at


def test_no_mfa_device_is_not_ready_with_the_console_link_and_one_email(grant):
    mail.outbox.clear()
    after = run(grant)

    assert after.readiness_state == ReadinessState.NOT_READY
    assert after.ready_at is None
    assert set(failed(after)) == {"mfa"}
    mfa = failed(after)["mfa"]
    assert "has no MFA device" in mfa["message"]
    assert "name the virtual device exactly carol" in mfa["fix"]
    assert mfa["link"].startswith("https://123456789012.signin.aws.amazon.com/")
    assert "users%2Fdetails%2Fcarol" in mfa["link"]


def test_the_not_ready_email_is_sent_once_per_outcome(
    grant, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run(grant)
    with django_capture_on_commit_callbacks(execute=True):
        run(grant)
    (sent,) = mail.outbox
    assert sent.to == ["carol@example.com"]
    assert sent.subject == "[opsgate] Not ready: payments as deploy"
    assert "has no MFA device" in sent.body
    assert "name the virtual device exactly carol" in sent.body
    assert "signin.aws.amazon.com" in sent.body

    register_mfa("carol")
    with django_capture_on_commit_callbacks(execute=True):
        run(grant)
    assert [m.subject for m in mail.outbox][1] == "[opsgate] Ready: payments as deploy"


def test_a_user_outside_the_operators_group_is_not_ready(grant, iam):
    register_mfa("carol")
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")

    bad = failed(run(grant))

    assert set(bad) == {"operators_group"}
    assert "not in the group opsgate-operators" in bad["operators_group"]["message"]
    assert "Retry" in bad["operators_group"]["fix"]


def test_a_missing_iam_user_is_not_ready(grant, iam):
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    iam.delete_user(UserName="carol")

    bad = failed(run(grant))

    assert "iam_user" in bad
    assert "does not exist in account 123456789012" in bad["iam_user"]["message"]


def test_a_trust_without_the_person_or_their_conditions_is_not_ready(grant, iam):
    register_mfa("carol")
    role = iam.get_role(RoleName="payments-deploy")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    trust["Statement"][0]["Condition"].pop("Bool")
    iam.update_assume_role_policy(
        RoleName="payments-deploy", PolicyDocument=json.dumps(trust)
    )

    bad = failed(run(grant))
    assert set(bad) == {"trust"}
    assert "without the conditions opsgate writes" in bad["trust"]["message"]
    assert "rewrites the trust" in bad["trust"]["fix"]

    trust["Statement"][0]["Principal"]["AWS"] = ["arn:aws:iam::123456789012:root"]
    iam.update_assume_role_policy(
        RoleName="payments-deploy", PolicyDocument=json.dumps(trust)
    )
    assert "does not list carol" in failed(run(grant))["trust"]["message"]


def test_a_role_missing_its_tag_policy_or_boundary_is_not_ready(grant, iam):
    register_mfa("carol")
    iam.untag_role(RoleName="payments-deploy", TagKeys=["SSMSessionRunAs"])
    iam.delete_role_permissions_boundary(RoleName="payments-deploy")
    attached = iam.list_attached_role_policies(RoleName="payments-deploy")
    first = attached["AttachedPolicies"][0]
    iam.detach_role_policy(RoleName="payments-deploy", PolicyArn=first["PolicyArn"])

    bad = failed(run(grant))

    assert set(bad) == {"role_setup"}
    message = bad["role_setup"]["message"]
    assert "tags SSMSessionRunAs differ" in message
    assert f"policies {first['PolicyName']} are not attached" in message
    assert "the permissions boundary is not on" in message
    assert "Drift" in bad["role_setup"]["fix"]


def test_a_deleted_role_is_not_ready(grant, iam):
    register_mfa("carol")
    for p in iam.list_attached_role_policies(RoleName="payments-deploy")[
        "AttachedPolicies"
    ]:
        iam.detach_role_policy(RoleName="payments-deploy", PolicyArn=p["PolicyArn"])
    for name in iam.list_role_policies(RoleName="payments-deploy")["PolicyNames"]:
        iam.delete_role_policy(RoleName="payments-deploy", PolicyName=name)
    iam.delete_role(RoleName="payments-deploy")

    bad = failed(run(grant))

    assert set(bad) == {"role"}
    assert "does not exist in account" in bad["role"]["message"]


def test_each_instance_row_says_ready_offline_not_managed_or_no_os_user(
    grant, ec2, ssm_sim
):
    register_mfa("carol")
    ready = run_instance(ec2, "payments", "ready")
    stopped = run_instance(ec2, "payments", "stopped", state="stopped")
    unmanaged = run_instance(ec2, "payments", "no-agent")
    ec2.create_tags(
        Resources=[unmanaged],
        Tags=[{"Key": moto_ext.UNMANAGED_TAG[0], "Value": moto_ext.UNMANAGED_TAG[1]}],
    )
    no_user = run_instance(ec2, "payments", "no-user")
    broken = run_instance(ec2, "payments", "broken")
    run_instance(ec2, "other", "not-ours")
    give_os_users(ec2, ready, "deploy")
    give_os_users(ec2, no_user, "someone-else")
    break_os_user_runs(ec2, broken, "useradd: cannot lock /etc/passwd")

    after = run(grant)

    assert after.readiness_state == ReadinessState.NOT_READY
    instances = failed(after)["instances"]
    rows = {r["instance_id"]: r for r in instances["rows"]}
    assert {i: r["state"] for i, r in rows.items()} == {
        ready: "ready",
        stopped: "offline",
        unmanaged: "not managed",
        no_user: "no OS user",
        broken: "no OS user",
    }
    assert "start it" in rows[stopped]["message"]
    assert "SSM does not manage it" in rows[unmanaged]["message"]
    assert "There is no OS user deploy" in rows[no_user]["message"]
    assert "cannot lock /etc/passwd" in rows[broken]["message"]
    assert "Create OS users" in instances["fix"]
    assert "SSM agent" in instances["fix"]
    # Only the check document ran: the project did not opt in.
    assert os_users_on(no_user) == {"ec2-user", "ssm-user", "someone-else"}


def test_an_opted_in_project_gets_the_os_user_created(grant, ec2, ssm_sim, alice):
    register_mfa("carol")
    project = grant.role.project
    projects.project_update(
        actor=alice.user,
        project=project,
        approvers=list(project.approvers.all()),
        create_os_users=True,
    )
    instance = run_instance(ec2, "payments", "web-1")

    after = run(grant)

    assert after.readiness_state == ReadinessState.READY, failed(after)
    (row,) = checks(after)["instances"]["rows"]
    assert row["message"] == "opsgate created the OS user deploy."
    assert os_users_on(instance) == {"ec2-user", "ssm-user", "deploy"}
    # Idempotent: the second run finds it.
    (row,) = checks(run(grant))["instances"]["rows"]
    assert row["message"] == "The OS user deploy exists."


def test_only_stopped_instances_are_not_ready_and_say_start_one(grant, ec2):
    register_mfa("carol")
    run_instance(ec2, "payments", "web-1", state="stopped")

    bad = failed(run(grant))

    assert set(bad) == {"instances"}
    assert "Start an instance" in bad["instances"]["fix"]


def test_a_project_without_instances_is_ready_with_nothing_to_connect_to(grant):
    register_mfa("carol")
    after = run(grant)
    assert after.readiness_state == ReadinessState.READY
    assert "nothing to connect to" in checks(after)["instances"]["message"]


def test_a_failing_aws_call_mid_check_is_never_ready(grant, account):
    register_mfa("carol")
    with injected(account) as faults:
        faults.fail("ListMFADevices", "AccessDenied", "not allowed", times=3)
        after = run(grant)

    assert after.readiness_state == ReadinessState.NOT_READY
    bad = failed(after)
    assert set(bad) == {"mfa"}
    assert bad["mfa"]["message"] == (
        "Could not check: iam:ListMFADevices failed: AccessDenied: not allowed"
    )
    assert after.ready_at is None


def test_a_failing_ec2_call_is_not_ready_with_awss_message(grant, account):
    register_mfa("carol")
    faults = Faults()
    ec2 = aws.client("ec2", account, region="us-east-1")  # the session region's
    ec2.meta.events.register("before-send.ec2", faults.handler)
    faults.fail("DescribeInstances", "UnauthorizedOperation", "no", times=3)
    try:
        bad = failed(run(grant))
    finally:
        ec2.meta.events.unregister("before-send.ec2", faults.handler)
    assert (
        "ec2:DescribeInstances failed: UnauthorizedOperation"
        in (bad["instances"]["message"])
    )


def test_a_check_that_may_fail_only_from_propagation_is_retried_then_reported(
    grant, iam
):
    register_mfa("carol")
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    AccessRequest.objects.filter(pk=grant.pk).update(
        readiness_state=ReadinessState.CHECKING
    )

    # Just written: come back in 5 s, then 10 s…, nothing recorded yet.
    assert readiness.grant_readiness_run(grant_id=grant.pk, attempt=0) == 5.0
    assert readiness.grant_readiness_run(grant_id=grant.pk, attempt=1) == 10.0
    waiting = AccessRequest.objects.get(pk=grant.pk)
    assert waiting.readiness_state == ReadinessState.CHECKING
    assert waiting.readiness_checks == []

    # Never past two minutes after the last change…
    wait = readiness.grant_readiness_run(grant_id=grant.pk, attempt=10)
    assert 100 < wait <= 120

    # …after which it is reported.
    old = timezone.now() - timedelta(minutes=3)
    AccessRequest.objects.filter(pk=grant.pk).update(provisioned_at=old)
    grant.role.__class__.objects.filter(pk=grant.role_id).update(last_synced_at=old)
    grant.requester.__class__.objects.filter(pk=grant.requester_id).update(
        last_synced_at=old
    )
    assert readiness.grant_readiness_run(grant_id=grant.pk, attempt=3) == 0
    assert set(failed(AccessRequest.objects.get(pk=grant.pk))) == {"operators_group"}


def test_a_missing_mfa_device_is_reported_at_once_not_retried(grant):
    assert readiness.grant_readiness_run(grant_id=grant.pk, attempt=0) == 0
    assert AccessRequest.objects.get(pk=grant.pk).readiness_state == "not_ready"


def test_revoked_and_expired_grants_are_not_checked(grant, carol):
    AccessRequest.objects.filter(pk=grant.pk).update(
        readiness_state=ReadinessState.CHECKING
    )
    access_requests.access_request_revoke(access_request=grant, actor=carol.user)

    assert readiness.grant_readiness_run(grant_id=grant.pk) == 0
    after = AccessRequest.objects.get(pk=grant.pk)
    assert after.readiness_state == ReadinessState.UNKNOWN
    assert after.readiness_checks == []
    assert not readiness_service.readiness_record(
        grant_id=grant.pk, checks=[], ready=True
    )
    with pytest.raises(ValidationError, match="not active"):
        readiness_service.grant_check_request(grant=after, actor=carol.user)


def test_an_expired_grant_is_not_checked(grant):
    AccessRequest.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert readiness_service.readiness_check_request(grant_ids=[grant.pk]) == []
    assert readiness.grant_readiness_run(grant_id=grant.pk) == 0
    assert AccessRequest.objects.get(pk=grant.pk).readiness_state == "unknown"


def test_a_scheduled_grant_that_has_not_started_is_not_ready(grant, carol):
    AccessRequest.objects.filter(pk=grant.pk).update(
        starts_at=timezone.now() + timedelta(hours=2)
    )
    scheduled = AccessRequest.objects.get(pk=grant.pk)
    with pytest.raises(ValidationError, match="has not started yet"):
        readiness_service.grant_check_request(grant=scheduled, actor=carol.user)
    readiness.grant_readiness_run(grant_id=grant.pk)
    assert AccessRequest.objects.get(pk=grant.pk).readiness_state != "ready"


def test_convergence_asks_for_the_check_and_the_worker_records_it(
    approved, ssm_sim, provisioning_runs, django_capture_on_commit_callbacks
):
    register_mfa("carol")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sync.role_sync(role_id=approved.role_id)
    after = AccessRequest.objects.get(pk=approved.pk)
    assert after.readiness_state == ReadinessState.READY
    subjects = [m.subject for m in mail.outbox]
    assert "[opsgate] Ready: payments as deploy" in subjects


def test_with_checks_off_nothing_is_asked(approved, settings):
    settings.OPSGATE = {**settings.OPSGATE, "READINESS_CHECKS": False}
    sync.role_sync(role_id=approved.role_id)
    assert readiness_service.readiness_check_request(grant_ids=[approved.pk]) == []
    assert AccessRequest.objects.get(pk=approved.pk).readiness_state == "unknown"


def test_the_os_user_documents_have_the_agreed_names():
    assert os_users.CHECK_DOCUMENT == "opsgate-CheckOsUser"
    assert os_users.ENSURE_DOCUMENT == "opsgate-EnsureOsUser"


# --- A second account ----------------------------------------------------------


def test_a_workload_accounts_grant_is_read_in_both_accounts(
    world,  # noqa: F811
    monkeypatch,
    readiness_on,
):
    """carol (identity account) holds payments/deploy in staging, whose
    sessions run in us-east-1 and eu-west-1: her user is read in the identity
    account, the role and the instances in staging, in both regions."""
    from tests.test_accounts import grant as cross_grant

    real_ssm(monkeypatch)
    people_account, staging = world["people"], world["staging"]
    deploy_documents(staging, staging.session_regions)
    carol, role = world["carol"], world["staging_role"]
    for account in (people_account, staging):
        sync.account_baseline_sync(account_id=account.pk)
    sync.iam_user_sync(iam_user_id=carol.pk)
    req = cross_grant(role, carol, world["bob"])
    sync.role_sync(role_id=role.pk)
    register_mfa("carol")
    east = aws.client("ec2", staging, region="us-east-1")
    west = aws.client("ec2", staging, region="eu-west-1")
    in_east = run_instance(east, "payments", "east-1")
    in_west = run_instance(west, "payments", "west-1")
    # The same tag in the identity account is not the grant's business.
    run_instance(boto3.client("ec2", region_name="us-east-1"), "payments", "other")
    give_os_users(east, in_east, "deploy")

    after = run(AccessRequest.objects.get(pk=req.pk))

    assert set(failed(after)) == {"instances"}
    rows = {r["instance_id"]: r for r in failed(after)["instances"]["rows"]}
    assert set(rows) == {in_east, in_west}
    assert (rows[in_east]["region"], rows[in_east]["state"]) == ("us-east-1", "ready")
    assert (rows[in_west]["region"], rows[in_west]["state"]) == (
        "eu-west-1",
        "no OS user",
    )
    assert checks(after)["trust"]["ok"] and checks(after)["mfa"]["ok"]

    os_users_on(in_west, account_id=staging.account_id, region="eu-west-1").add(
        "deploy"
    )
    assert run(after).readiness_state == ReadinessState.READY


# --- The demo ---------------------------------------------------------------------


def test_the_demo_has_a_ready_grant_a_not_ready_one_and_an_os_user_made_by_opsgate(
    ssm_sim, monkeypatch
):
    """What scripts/demo.sh shows once the worker converged: dave's Data
    Platform grant Ready (opsgate created the OS user analyst on etl-1), carol's
    checkout grant in staging Not ready for want of an MFA device."""
    from django.core.management import call_command

    from accounts_app.models import AwsAccount, IamUser, OperationRole

    call_command("demo_seed")
    for account in AwsAccount.objects.all():
        sync.account_baseline_sync(account_id=account.pk)
    for person in IamUser.objects.all():
        sync.iam_user_sync(iam_user_id=person.pk)
    for role in OperationRole.objects.filter(requests__status="approved").distinct():
        sync.role_sync(role_id=role.pk)
    dave = AccessRequest.objects.get(
        requester__name="dave", status="approved", role__project__name="Data Platform"
    )
    carol = AccessRequest.objects.get(
        requester__name="carol", status="approved", role__project__name="checkout"
    )

    dave, carol = run(dave), run(carol)

    assert dave.readiness_state == ReadinessState.READY, failed(dave)
    (row,) = checks(dave)["instances"]["rows"]
    assert row["name"] == "etl-1"
    assert row["message"] == "opsgate created the OS user analyst."
    assert carol.readiness_state == ReadinessState.NOT_READY
    assert set(failed(carol)) == {"mfa"}
    assert "Your IAM user carol has no MFA device" in failed(carol)["mfa"]["message"]


# --- With nothing but opsgate's own policy ------------------------------------------


def test_the_check_needs_nothing_beyond_the_service_policy(
    grant,
    ec2,
    as_opsgate,  # noqa: F811
    monkeypatch,
):
    """moto's IAM access checks on, opsgate signed in with only the service
    policy's actions: every read of the check is allowed, and so is the
    OS-user document's ssm:SendCommand to a project's running instance."""
    from moto.core.authorization import enable_iam_authentication

    from tests import iam_sim
    from tests.test_least_privilege import service_policy

    register_mfa("carol")
    stopped = run_instance(ec2, "payments", "web-1", state="stopped")
    running = run_instance(ec2, "payments", "web-2")
    give_os_users(ec2, running, "deploy")
    as_opsgate(iam_sim.moto_projection(service_policy()))
    real_ssm(monkeypatch)
    with enable_iam_authentication():
        after = run(grant)

    assert after.readiness_state == ReadinessState.READY, failed(after)
    rows = {r["instance_id"]: r for r in checks(after)["instances"]["rows"]}
    assert rows[stopped]["state"] == "offline"
    assert rows[running]["state"] == "ready", rows[running]
    assert not [c for c in after.readiness_checks if "Could not" in c["message"]]

"""AWS loses opsgate's objects (an account wiped, a sandbox restored, a wrong
`terraform destroy`) while the database says "in sync": opsgate notices and
puts everything back without an admin (issue 9, point 6). moto in-process; a
reset of moto is the account wiped. The same through a real worker and beat is
in tests/test_recovery_worker.py."""

import json
import urllib.request
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts_app import selectors
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    SyncStatus,
)
from accounts_app.services import roles
from provisioning import aws, baseline, policies, reconcile, recovery, sync, tasks
from provisioning.aws import DependencyMissing, RetryLater
from tests.conftest import deploy_boundaries
from tests.faults import injected
from tests.helpers import arn, grant

pytestmark = pytest.mark.django_db

ROLE = "payments-deploy"


@pytest.fixture
def world(aws_env, alice, bob, carol, dave, deploy_role):
    """In sync: the baseline, every person's IAM user, payments-deploy
    trusted by carol (her grant active)."""
    carols = grant(carol, deploy_role, bob)
    for person in IamUser.objects.all():
        sync.iam_user_sync(iam_user_id=person.pk)
    sync.role_sync(role_id=deploy_role.pk)
    carols.refresh_from_db()
    assert carols.provisioned_at
    return carols


@pytest.fixture
def wipe(aws_env):
    """Everything in AWS gone at once, the database untouched. The two
    permissions boundaries are the deployment's, not opsgate's (opsgate may not
    write them): unless told otherwise the deployment step runs again, as an
    administrator would after such a loss."""

    def _wipe(*, redeploy_boundaries: bool = True):
        request = urllib.request.Request(f"{aws_env}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()
        if redeploy_boundaries:
            deploy_boundaries()

    return _wipe


@pytest.fixture
def reconciles(monkeypatch):
    """The account ids a reconcile was asked for (instead of the broker)."""
    asked = []
    monkeypatch.setattr(tasks, "enqueue_reconcile", asked.append)
    return asked


def role_of(pk):
    return OperationRole.objects.get(pk=pk)


def account_of(pk):
    return AwsAccount.objects.get(pk=pk)


def attached(iam, role=ROLE):
    return sorted(
        p["PolicyArn"]
        for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    )


def assert_baseline_in_aws(iam, account):
    group = iam.get_group(GroupName="opsgate-operators")["Group"]
    assert group["Path"] == "/opsgate/"
    assert sorted(
        p["PolicyArn"]
        for p in iam.list_attached_group_policies(GroupName="opsgate-operators")[
            "AttachedPolicies"
        ]
    ) == sorted(baseline.group_policy_arns(account))
    for name in [
        *baseline.baseline_documents(account),
        "opsgate-OperationRoleBoundary",
    ]:
        assert iam.get_policy(PolicyArn=arn("policy", name))["Policy"]["PolicyName"]


# --- A missing dependency repairs the baseline, then the object ---------------


def test_a_role_sync_finding_the_shared_policies_gone_repairs_the_baseline_first(
    world, wipe, iam, account, reconciles
):
    wipe()
    role = role_of(world.role_id)
    role.bump()  # any change to the role: a grant, a revoke, an expiry

    # The task, as the worker runs it: no admin, no manual retry.
    tasks.sync_role.apply(args=[role.pk])

    role = role_of(role.pk)
    assert role.sync_status == SyncStatus.IN_SYNC, role.last_error
    assert role.last_error == "" and role.missing_since is None
    assert attached(iam) == sorted(baseline.role_policy_arns(account))
    aws_role = iam.get_role(RoleName=ROLE)["Role"]
    assert aws_role["AssumeRolePolicyDocument"] == policies.trust_policy(
        [arn("user", "carol")]
    )
    assert aws_role["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn(
        "policy", "opsgate-OperationRoleBoundary"
    )
    assert_baseline_in_aws(iam, account)
    assert account_of(account.pk).sync_status == SyncStatus.IN_SYNC
    # The users are gone too: the account is reconciled at once.
    assert reconciles == [account.pk]
    assert account_of(account.pk).objects_missing_at is not None


def test_a_new_person_after_the_group_is_gone_gets_the_group_back_and_joins_it(
    world, wipe, iam, account, erin, reconciles
):
    wipe()

    tasks.sync_iam_user.apply(args=[erin.pk])

    erin.refresh_from_db()
    assert erin.sync_status == SyncStatus.IN_SYNC, erin.last_error
    groups = iam.list_groups_for_user(UserName="erin")["Groups"]
    assert [g["GroupName"] for g in groups] == ["opsgate-operators"]
    assert_baseline_in_aws(iam, account)
    assert reconciles == [account.pk]


def test_a_dependency_still_missing_after_one_baseline_repair_is_retried_later(
    world, iam, account, carol, bob, alice, reconciles
):
    """IAM eventual consistency: the policy may not be visible yet. One
    baseline repair per attempt, then the task's retries; never permanent."""
    ops = roles.role_create(actor=alice.user, project=world.role.project, os_user="ops")
    grant(carol, ops, bob)
    with injected(account) as faults:
        faults.fail(
            "AttachRolePolicy", "NoSuchEntity", "Policy x does not exist", times=2
        )
        with pytest.raises(DependencyMissing) as raised:
            sync.role_sync(role_id=ops.pk)
    assert isinstance(raised.value, RetryLater)
    assert faults.sent.count("AttachRolePolicy") == 2  # the attempt, and one more
    assert faults.sent.count("GetGroup") == 1  # the baseline converged once
    ops = role_of(ops.pk)
    assert not ops.error_is_permanent
    assert ops.sync_status == SyncStatus.PENDING
    assert ops.last_error.startswith(
        "Retrying: iam:AttachRolePolicy failed: NoSuchEntity"
    )
    assert ops.missing_since is not None  # its grants are not shown as active

    sync.role_sync(role_id=ops.pk)  # the task's next try

    ops = role_of(ops.pk)
    assert ops.sync_status == SyncStatus.IN_SYNC and ops.missing_since is None
    assert attached(iam, "payments-ops") == sorted(baseline.role_policy_arns(account))


def test_a_missing_aws_managed_policy_stays_a_permanent_error(world, account):
    """Not something opsgate can restore: waiting would loop for nothing."""
    from provisioning.aws import PermanentError

    AwsAccount.objects.filter(pk=account.pk).update(
        desired_version=F("desired_version") + 1
    )
    client = aws.client("iam", account)
    managed = policies.aws_managed_policy_arn(policies.AWS_MANAGED_GROUP_POLICY, "aws")
    client.detach_group_policy(GroupName="opsgate-operators", PolicyArn=managed)
    with injected(account) as faults:
        faults.fail(
            "AttachGroupPolicy", "NoSuchEntity", f"Policy {managed} was not found"
        )
        with pytest.raises(PermanentError):
            sync.account_baseline_sync(account_id=account.pk)
    assert account_of(account.pk).error_is_permanent


# --- Objects stopped by a permanent error get another try ---------------------


def test_objects_stopped_by_a_permanent_error_are_retried_after_a_baseline_repair(
    world, wipe, iam, account, monkeypatch, django_capture_on_commit_callbacks
):
    wipe()
    role = role_of(world.role_id)
    role.bump()
    with injected(account) as faults:  # say, opsgate's credentials lacked a right
        faults.fail("CreateRole", "AccessDenied", "not allowed")
        tasks.sync_role.apply(args=[role.pk])
    assert role_of(role.pk).sync_status == SyncStatus.ERROR
    monkeypatch.setattr(
        tasks, "_publish", lambda task, pk, **options: task.apply(args=[pk]) or True
    )

    # The baseline is repaired (found gone by the sweep, by a sync, or an admin).
    account.bump()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sync_account.apply(args=[account.pk])

    role = role_of(role.pk)
    assert role.sync_status == SyncStatus.IN_SYNC, role.last_error
    assert attached(iam) == sorted(baseline.role_policy_arns(account))
    retry = AuditEvent.objects.get(action="sync.retry", object_id=str(role.pk))
    assert retry.actor is None
    assert retry.after == {"reason": "the account's baseline was repaired"}


def test_a_baseline_sync_that_writes_nothing_retries_nobody(
    world, account, django_capture_on_commit_callbacks
):
    role = role_of(world.role_id)
    OperationRole.objects.filter(pk=role.pk).update(
        desired_version=F("desired_version") + 1, error_is_permanent=True
    )
    AwsAccount.objects.filter(pk=account.pk).update(
        desired_version=F("desired_version") + 1
    )

    with django_capture_on_commit_callbacks() as published:
        sync.account_baseline_sync(account_id=account.pk)

    assert role_of(role.pk).error_is_permanent
    assert published == []


def stop(role, message="iam:AttachRolePolicy failed: NoSuchEntity: Policy gone"):
    """What a sync before this change left: a permanent error."""
    OperationRole.objects.filter(pk=role.pk).update(
        desired_version=F("desired_version") + 1,
        error_is_permanent=True,
        last_error=message,
    )


def delete_role(iam, name=ROLE):
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=name)


def test_reconcile_repairs_a_role_stopped_by_a_permanent_error(
    world, iam, account, quiet_zero
):
    delete_role(iam)
    stop(world.role)

    report = reconcile.reconcile_account(account)

    assert ("role", ROLE, "missing") in [
        (f.object_type, f.name, f.kind) for f in report.found
    ]
    role = role_of(world.role_id)
    assert role.sync_status == SyncStatus.IN_SYNC, role.last_error
    assert iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"] == (
        policies.trust_policy([arn("user", "carol")])
    )


def test_reconcile_retries_a_role_stopped_by_a_permanent_error_that_shows_no_drift(
    world, iam, account, quiet_zero
):
    stop(world.role)

    report = reconcile.reconcile_account(account)

    assert report.found == [] and report.retried == [f"OperationRole {world.role}"]
    role = role_of(world.role_id)
    assert role.sync_status == SyncStatus.IN_SYNC and role.last_error == ""
    retry = AuditEvent.objects.get(action="reconcile.retry")
    assert retry.after == {
        "error": "iam:AttachRolePolicy failed: NoSuchEntity: Policy gone"
    }


def test_reconcile_leaves_a_permanent_error_it_cannot_help_to_the_admin(
    world, iam, account, quiet_zero
):
    """A same-named role that is not opsgate's: reported, never retried."""
    delete_role(iam)
    iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([arn("user", "x")])),
    )
    stop(world.role, "An IAM role named payments-deploy … not managed by opsgate")

    report = reconcile.reconcile_account(account)

    assert [(f.name, f.kind) for f in report.found] == [(ROLE, "not_owned")]
    assert report.retried == [] and report.repaired == []
    assert role_of(world.role_id).error_is_permanent


# --- A sync that finds opsgate's objects missing reconciles the account -------


def test_the_sweep_finds_the_group_gone_and_everything_comes_back(
    world, wipe, iam, account, monkeypatch, django_capture_on_commit_callbacks
):
    """Default quiet period: objects synced moments before the wipe are
    checked anyway, because they were synced before the loss was found."""
    sent = []
    monkeypatch.setattr(
        tasks, "_publish", lambda task, pk, **options: sent.append((task, pk)) or True
    )
    tasks.sweep()
    assert (tasks.check_baseline, account.pk) in sent
    settled(account)
    wipe()
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        tasks.check_baseline.apply(args=[account.pk])
    assert sorted(t.name.rsplit(".", 1)[1] for t, _ in sent) == [
        "reconcile_account",
        "sync_account",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for task, pk in sent:
            task.apply(args=[pk])

    assert_baseline_in_aws(iam, account)
    for name in ("alice", "bob", "carol", "dave"):
        groups = iam.list_groups_for_user(UserName=name)["Groups"]
        assert [g["GroupName"] for g in groups] == ["opsgate-operators"], name
    assert iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"] == (
        policies.trust_policy([arn("user", "carol")])
    )
    assert attached(iam) == sorted(baseline.role_policy_arns(account))
    assert not OperationRole.objects.exclude(missing_since=None).exists()
    assert all(p.sync_status == SyncStatus.IN_SYNC for p in IamUser.objects.all())


def test_a_wipe_that_took_the_boundaries_waits_for_the_deployment_then_recovers(
    world, wipe, iam, account, monkeypatch, django_capture_on_commit_callbacks
):
    """opsgate may not create its permissions boundaries: until the deployment
    step runs again the baseline says so (not a generic error) and nothing
    else is created; then the sweep carries on with no admin retry."""
    monkeypatch.setattr(tasks, "_publish", lambda task, pk, **options: True)
    settled(account)
    wipe(redeploy_boundaries=False)
    AwsAccount.objects.filter(pk=account.pk).update(
        desired_version=F("desired_version") + 1
    )
    with pytest.raises(aws.PermanentError):
        sync.account_baseline_sync(account_id=account.pk)
    account.refresh_from_db()
    assert account.last_error.startswith(sync.BOUNDARY_MISSING)
    assert "opsgate_boundaries" in account.last_error
    assert iam.list_groups()["Groups"] == []

    deploy_boundaries()
    tasks.sweep()  # clears the boundary error's permanent flag
    account.refresh_from_db()
    assert not account.error_is_permanent
    with django_capture_on_commit_callbacks(execute=True):
        sync.account_baseline_sync(account_id=account.pk)
        sync.role_sync(role_id=world.role_id)
    assert_baseline_in_aws(iam, account)
    assert iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"] == (
        policies.trust_policy([arn("user", "carol")])
    )


def settled(account, seconds=3600):
    """The baseline last synced a while ago (not moments before the wipe)."""
    AwsAccount.objects.filter(pk=account.pk).update(
        last_synced_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_check_leaves_a_baseline_synced_moments_ago_alone(world, wipe, account):
    """A group created seconds ago may not show yet in IAM's reads."""
    wipe()
    with injected(account) as faults:
        tasks.check_baseline.apply(args=[account.pk])
    assert faults.sent == []
    assert account_of(account.pk).sync_status == SyncStatus.IN_SYNC

    settled(account, seconds=61)  # the sweep's interval, 60 s, has passed
    with injected(account) as faults:
        tasks.check_baseline.apply(args=[account.pk])
    assert faults.sent == ["GetGroup"]
    assert account_of(account.pk).sync_status == SyncStatus.PENDING


def test_a_user_created_again_asks_for_a_reconcile_of_the_account_once(
    world, iam, account, carol, dave, reconciles, django_capture_on_commit_callbacks
):
    for name in ("carol", "dave"):
        iam.remove_user_from_group(GroupName="opsgate-operators", UserName=name)
        iam.delete_user(UserName=name)
    with django_capture_on_commit_callbacks(execute=True):
        for person in (carol, dave):
            person.bump()
            sync.iam_user_sync(iam_user_id=person.pk)

    assert reconciles == [account.pk]  # one request while one is pending
    reconcile.reconcile_account(account)
    with django_capture_on_commit_callbacks(execute=True):
        assert recovery.account_reconcile_request(account_id=account.pk, reason="again")
    assert reconciles == [account.pk, account.pk]


def test_invalid_principal_for_a_person_aws_lost_recreates_them_instead_of_stopping(
    world, iam, account, carol, dave, bob, settings, reconciles
):
    """Real IAM refuses a trust naming a deleted user (moto does not): the
    person is created again and the role retried, not stopped for good."""
    settings.OPSGATE = {**settings.OPSGATE, "PRINCIPAL_PROPAGATION_SECONDS": 0}
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    iam.delete_user(UserName="carol")
    grant(dave, world.role, bob)
    with injected(account) as faults:
        faults.fail(
            "UpdateAssumeRolePolicy", "MalformedPolicyDocument", "Invalid principal"
        )
        with pytest.raises(RetryLater, match="carol"):
            sync.role_sync(role_id=world.role_id)
    assert not role_of(world.role_id).error_is_permanent
    assert reconciles == [account.pk]

    sync.role_sync(role_id=world.role_id)  # the task's next try

    assert role_of(world.role_id).sync_status == SyncStatus.IN_SYNC
    assert iam.get_user(UserName="carol")["User"]["Path"] == "/opsgate/"
    assert iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"] == (
        policies.trust_policy([arn("user", "carol"), arn("user", "dave")])
    )


# --- What people see ----------------------------------------------------------


def test_a_grant_whose_role_is_known_missing_is_not_shown_active(
    world, iam, account, carol, login, quiet_zero
):
    assert selectors.request_display(world).key == "active"
    delete_role(iam)

    reconcile.reconcile_account(account, repair=False)

    shown = selectors.request_display(AccessRequest.objects.get(pk=world.pk))
    assert (shown.key, shown.label) == ("provisioning", "Being restored")
    assert "found missing in AWS" in shown.detail
    client = login(carol)
    page = client.get(reverse("home")).content.decode()
    assert "Being restored" in page and ">Active<" not in page
    assert "Switch Role" not in page
    status = client.get(reverse("request_status")).json()["requests"][str(world.pk)]
    assert (status["label"], status["final"]) == ("Being restored", False)

    reconcile.reconcile_account(account)  # the repair

    assert selectors.request_display(AccessRequest.objects.get(pk=world.pk)).key == (
        "active"
    )

"""The two permissions boundaries (issue 15) against moto: the deployment step
creates them (command or CloudFormation), opsgate only checks that they exist,
every IAM user carries the user boundary, and reconcile reports and repairs a
missing or different one. moto lacks user boundaries; provisioning/moto_ext.py
adds them (installed by tests/conftest.py)."""

import json
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts_app.models import AwsAccount, IamUser, SyncStatus
from accounts_app.services import access_requests
from provisioning import boundaries, policies, reconcile, sync, tasks
from provisioning.aws import PermanentError
from provisioning.models import Drift
from tests.conftest import ACCOUNT_ID

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "opsgate-boundaries.json"
IAM = f"arn:aws:iam::{ACCOUNT_ID}"
ROLE_BOUNDARY = f"{IAM}:policy/opsgate/opsgate-OperationRoleBoundary"
USER_BOUNDARY = f"{IAM}:policy/opsgate/opsgate-OperatorBoundary"


def user_boundary(iam, name: str) -> str | None:
    found = iam.get_user(UserName=name)["User"].get("PermissionsBoundary") or {}
    return found.get("PermissionsBoundaryArn")


def delete_policy(iam, arn: str) -> None:
    """What an administrator (or an AWS wipe) does behind opsgate's back."""
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)


def reload(obj):
    obj.refresh_from_db()
    return obj


# --- Users carry the user boundary ---------------------------------------------


def test_a_new_iam_user_is_created_with_the_user_boundary(aws_env, iam, carol):
    sync.iam_user_sync(iam_user_id=carol.pk)
    assert user_boundary(iam, "carol") == USER_BOUNDARY


@pytest.mark.parametrize("before", [None, ROLE_BOUNDARY])
def test_an_existing_user_gets_the_user_boundary_on_its_next_sync(
    aws_env, iam, carol, before
):
    sync.iam_user_sync(iam_user_id=carol.pk)
    iam.delete_user_permissions_boundary(UserName="carol")
    if before:
        iam.put_user_permissions_boundary(UserName="carol", PermissionsBoundary=before)
    carol.bump()
    sync.iam_user_sync(iam_user_id=carol.pk)
    assert user_boundary(iam, "carol") == USER_BOUNDARY
    assert reload(carol).sync_status == SyncStatus.IN_SYNC


# --- opsgate does not create the boundaries; a missing one is a clear error ---


@pytest.mark.parametrize("missing", [USER_BOUNDARY, ROLE_BOUNDARY])
def test_a_missing_boundary_stops_the_baseline_with_an_error_that_says_how_to_fix_it(
    aws_env, iam, account, missing
):
    delete_policy(iam, missing)
    with pytest.raises(PermanentError):
        sync.account_baseline_sync(account_id=account.pk)
    account = reload(account)
    assert account.sync_status == SyncStatus.ERROR
    assert account.last_error.startswith(
        f"Permissions boundary missing in account {ACCOUNT_ID}: {missing}."
    )
    assert "manage.py opsgate_boundaries --apply" in account.last_error
    assert "deploy/cloudformation/opsgate-boundaries.json" in account.last_error
    # Nothing half-written: no boundary, no group, no policy of opsgate's.
    local = iam.list_policies(Scope="Local")["Policies"]
    assert missing not in [p["Arn"] for p in local]
    assert [p["PolicyName"] for p in local] == [
        n
        for n in ["opsgate-OperationRoleBoundary", "opsgate-OperatorBoundary"]
        if not missing.endswith(n)
    ]
    assert iam.list_groups()["Groups"] == []


def test_the_dashboard_and_the_django_admin_show_the_missing_boundary(
    aws_env, iam, account, alice, login
):
    delete_policy(iam, USER_BOUNDARY)
    with pytest.raises(PermanentError):
        sync.account_baseline_sync(account_id=account.pk)
    client = login(alice)
    expected = f"Permissions boundary missing in account {ACCOUNT_ID}: {USER_BOUNDARY}"
    dashboard = client.get(reverse("dashboard"))
    assert expected in dashboard.content.decode()
    admin = client.get(reverse("admin:accounts_app_awsaccount_changelist"))
    assert expected in admin.content.decode()


def _swept() -> dict:
    with mock.patch.object(tasks, "_publish", return_value=True) as publish:
        tasks.sweep()
    return {
        (call.args[0].name.rsplit(".", 1)[1], call.args[1])
        for call in publish.call_args_list
    }


def test_the_sweep_retries_until_the_deployment_step_has_run(
    aws_env, iam, account, carol, settings, capsys
):
    """The error is permanent (an admin must act) but needs no retry click:
    the account and the person waiting for it carry on by themselves."""
    settings.OPSGATE = {**settings.OPSGATE, "SWEEP_GRACE_SECONDS": 0}
    delete_policy(iam, USER_BOUNDARY)
    # As the worker runs it: the task records the error and gives the lease
    # back (carol's creation took it, in its transaction).
    tasks.sync_iam_user.apply(args=[carol.pk])
    assert reload(carol).sync_status == SyncStatus.ERROR
    assert {("sync_account", account.pk), ("sync_iam_user", carol.pk)} <= _swept()
    assert not reload(account).error_is_permanent  # pending: being looked at
    tasks.sync_account.apply(args=[account.pk])
    assert reload(account).sync_status == SyncStatus.ERROR  # still missing

    call_command("opsgate_boundaries", "--apply")
    assert f"created: {USER_BOUNDARY}" in capsys.readouterr().out
    swept = _swept()
    assert {("sync_account", account.pk), ("sync_iam_user", carol.pk)} <= swept
    tasks.sync_iam_user.apply(args=[carol.pk])
    assert reload(account).sync_status == SyncStatus.IN_SYNC
    assert reload(carol).sync_status == SyncStatus.IN_SYNC
    assert user_boundary(iam, "carol") == USER_BOUNDARY


def test_other_permanent_errors_still_wait_for_an_admin(aws_env, account, settings):
    settings.OPSGATE = {**settings.OPSGATE, "SWEEP_GRACE_SECONDS": 0}
    AwsAccount.objects.filter(pk=account.pk).update(
        last_error="iam:CreateGroup failed: AccessDenied", error_is_permanent=True
    )
    assert ("sync_account", account.pk) not in _swept()
    assert reload(account).error_is_permanent


# --- The deployment step --------------------------------------------------------


def test_the_command_prints_both_boundaries(aws_env, capsys):
    call_command("opsgate_boundaries")
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "opsgate-OperationRoleBoundary": policies.role_boundary_policy(),
        "opsgate-OperatorBoundary": policies.user_boundary_policy(
            account_id=ACCOUNT_ID, path="/opsgate/"
        ),
    }


def test_apply_is_idempotent_and_restores_an_edited_boundary(aws_env, iam, capsys):
    capsys.readouterr()
    call_command("opsgate_boundaries", "--apply")  # aws_env applied it already
    out = capsys.readouterr().out
    assert f"unchanged: {ROLE_BOUNDARY}" in out
    assert f"unchanged: {USER_BOUNDARY}" in out

    widened = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.create_policy_version(
        PolicyArn=USER_BOUNDARY, PolicyDocument=json.dumps(widened), SetAsDefault=True
    )
    call_command("opsgate_boundaries", "--apply")
    assert f"updated: {USER_BOUNDARY}" in capsys.readouterr().out
    policy = iam.get_policy(PolicyArn=USER_BOUNDARY)["Policy"]
    document = iam.get_policy_version(
        PolicyArn=USER_BOUNDARY, VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]["Document"]
    assert policies.same_document(
        document,
        policies.user_boundary_policy(account_id=ACCOUNT_ID, path="/opsgate/"),
    )
    assert "Created by the deployment" in policy["Description"]


def test_apply_refuses_credentials_of_another_account(aws_env):
    with pytest.raises(CommandError, match=f"for account {ACCOUNT_ID}, not 111"):
        call_command("opsgate_boundaries", "--apply", "--account-id", "111122223333")


def test_the_cloudformation_template_creates_what_opsgate_checks_for(
    aws_env, iam, account
):
    import boto3

    for arn in (ROLE_BOUNDARY, USER_BOUNDARY):
        delete_policy(iam, arn)
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="opsgate-boundaries",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    expected = boundaries.documents(account_id=ACCOUNT_ID)
    for arn, name in (
        (ROLE_BOUNDARY, "opsgate-OperationRoleBoundary"),
        (USER_BOUNDARY, "opsgate-OperatorBoundary"),
    ):
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        document = iam.get_policy_version(
            PolicyArn=arn, VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
        # ${aws:username} survives Fn::Sub (escaped as ${!aws:username}).
        assert document == expected[name]
    sync.account_baseline_sync(account_id=account.pk)
    assert reload(account).sync_status == SyncStatus.IN_SYNC


def test_the_cloudformation_template_passes_cfn_lint():
    from cfnlint.api import lint  # errors and warnings, as the cfn-lint CLI

    assert [str(m) for m in lint(TEMPLATE.read_text())] == []
    broken = json.loads(TEMPLATE.read_text())
    broken["Resources"]["OperatorBoundary"]["Properties"]["Groups"] = "operators"
    assert lint(json.dumps(broken))  # the linter does see a bad template


# --- Reconcile ------------------------------------------------------------------


@pytest.fixture
def synced(aws_env, settings, carol, bob, deploy_role):
    settings.OPSGATE = {**settings.OPSGATE, "RECONCILE_QUIET_SECONDS": 0}
    request = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=request, approver=bob.user)
    for person in IamUser.objects.all():
        sync.iam_user_sync(iam_user_id=person.pk)
    sync.role_sync(role_id=deploy_role.pk)
    return deploy_role


def found(report):
    return sorted((f.object_type, f.name, f.kind) for f in report.found)


def test_reconcile_reports_and_repairs_a_removed_or_replaced_boundary(
    synced, account, iam
):
    iam.delete_user_permissions_boundary(UserName="carol")
    iam.put_user_permissions_boundary(UserName="bob", PermissionsBoundary=ROLE_BOUNDARY)
    iam.put_role_permissions_boundary(
        RoleName="payments-deploy", PermissionsBoundary=USER_BOUNDARY
    )

    report = reconcile.reconcile_account(account)

    assert found(report) == [
        ("role", "payments-deploy", "boundary"),
        ("user", "bob", "boundary"),
        ("user", "carol", "boundary"),
    ]
    carol_drift = Drift.objects.get(name="carol")
    assert carol_drift.detail == "no permissions boundary"
    assert carol_drift.expected == USER_BOUNDARY
    bob_drift = Drift.objects.get(name="bob")
    assert bob_drift.actual == ROLE_BOUNDARY
    assert report.errors == []
    assert user_boundary(iam, "carol") == USER_BOUNDARY
    assert user_boundary(iam, "bob") == USER_BOUNDARY
    role = iam.get_role(RoleName="payments-deploy")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == ROLE_BOUNDARY
    assert found(reconcile.reconcile_account(account)) == []


def test_reconcile_reports_an_edited_boundary_and_leaves_it_to_a_person(
    synced, account, iam
):
    widened = policies.role_boundary_policy()
    widened["Statement"][0]["Action"].append("ec2:RunInstances")
    iam.create_policy_version(
        PolicyArn=ROLE_BOUNDARY, PolicyDocument=json.dumps(widened), SetAsDefault=True
    )

    report = reconcile.reconcile_account(account)

    assert found(report) == [
        ("policy", "opsgate-OperationRoleBoundary", "policy_document")
    ]
    drift = Drift.objects.get()
    assert not drift.repairable
    assert "manage.py opsgate_boundaries --apply" in drift.detail
    assert report.repaired == []
    versions = iam.list_policy_versions(PolicyArn=ROLE_BOUNDARY)["Versions"]
    assert len(versions) == 2  # opsgate wrote nothing


def test_reconcile_of_a_deleted_boundary_puts_the_baseline_in_error(
    synced, account, iam
):
    delete_policy(iam, USER_BOUNDARY)

    report = reconcile.reconcile_account(account)

    assert ("policy", "opsgate-OperatorBoundary", "missing") in found(report)
    assert any(USER_BOUNDARY in error for error in report.errors)
    account = reload(account)
    assert account.sync_status == SyncStatus.ERROR
    assert "manage.py opsgate_boundaries --apply" in account.last_error

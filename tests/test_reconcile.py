"""Reconcile against moto: every drift kind of issue 4 is created behind
opsgate's back, reported, repaired, and a second reconcile finds nothing.
Objects that are not opsgate's are never touched."""

import json

import pytest
from django.core.management import call_command

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
)
from accounts_app.services import access_requests
from accounts_app.services import roles as role_services
from provisioning import baseline, drift_checks, policies, reconcile, sync
from provisioning.models import Drift
from tests.helpers import arn, grant

pytestmark = pytest.mark.django_db

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
DOC = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@pytest.fixture
def world(
    aws_env, quiet_zero, alice, bob, carol, dave, erin, deploy_role, other_project
):
    """In sync: baseline, every person's IAM user, four roles:
    payments-deploy (carol), payments-ops (carol), payments-readonly (carol)
    and Data Platform's deploy role (dave)."""
    ops = role_services.role_create(
        actor=alice.user, project=deploy_role.project, os_user="ops"
    )
    readonly = role_services.role_create(
        actor=alice.user, project=deploy_role.project, os_user="readonly"
    )
    data = role_services.role_create(
        actor=alice.user, project=other_project, os_user="deploy"
    )
    for role in (deploy_role, ops, readonly):
        grant(carol, role, bob)
    grant(dave, data, erin)
    for person in IamUser.objects.all():
        sync.iam_user_sync(iam_user_id=person.pk)
    for role in OperationRole.objects.all():
        sync.role_sync(role_id=role.pk)
    return {"deploy": deploy_role, "ops": ops, "readonly": readonly, "data": data}


def found(report):
    return sorted((f.object_type, f.name, f.kind) for f in report.found)


def test_an_account_in_sync_has_no_drift(world, account):
    report = reconcile.reconcile_account(account)
    assert found(report) == []
    assert report.repaired == [] and report.errors == []
    assert Drift.objects.count() == 0
    assert AwsAccount.objects.get(pk=account.pk).last_reconciled_at is not None


def tamper(iam, world):
    """Every drift kind of issue 4, done with another principal's API calls."""
    data = world["data"].role_name
    # Role payments-deploy: tags changed (key casing and value), an extra tag
    # with an opsgate key, sts:TagSession and "*" allowed, a policy detached
    # and others attached or put inline, MaxSessionDuration raised.
    iam.untag_role(RoleName="payments-deploy", TagKeys=["Project"])
    iam.tag_role(
        RoleName="payments-deploy",
        Tags=[
            {"Key": "project", "Value": "payments"},
            {"Key": "SSMSessionRunAs", "Value": "root"},
            {"Key": "opsgate-note", "Value": "x"},
            {"Key": "Team", "Value": "red"},
        ],
    )
    trust = policies.trust_policy([arn("user", "carol")])
    trust["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )
    iam.update_assume_role_policy(
        RoleName="payments-deploy", PolicyDocument=json.dumps(trust)
    )
    iam.detach_role_policy(
        RoleName="payments-deploy", PolicyArn=arn("policy", "opsgate-Ec2StartStop")
    )
    iam.attach_role_policy(RoleName="payments-deploy", PolicyArn=ADMIN)
    iam.put_role_policy(
        RoleName="payments-deploy",
        PolicyName="backdoor",
        PolicyDocument=json.dumps(DOC),
    )
    iam.update_role(RoleName="payments-deploy", MaxSessionDuration=43200)
    # Role payments-ops: trust edited (the session-tag deny removed).
    edited = policies.trust_policy([arn("user", "carol")])
    edited["Statement"].pop()
    iam.update_assume_role_policy(
        RoleName="payments-ops", PolicyDocument=json.dumps(edited)
    )
    # Role payments-readonly: deleted.
    for policy in iam.list_attached_role_policies(RoleName="payments-readonly")[
        "AttachedPolicies"
    ]:
        iam.detach_role_policy(
            RoleName="payments-readonly", PolicyArn=policy["PolicyArn"]
        )
    iam.delete_role(RoleName="payments-readonly")
    # dave's IAM user deleted. IAM then shows his unique id (AIDA…) in place
    # of his ARN in every trust policy; moto does not, so we write what IAM
    # would leave.
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="dave")
    iam.delete_user(UserName="dave")
    orphaned = policies.trust_policy(["AIDAEXAMPLEDAVE000001"])
    iam.update_assume_role_policy(RoleName=data, PolicyDocument=json.dumps(orphaned))
    # carol: e-mail tag changed, an opsgate key added, removed from the group,
    # a policy attached.
    iam.tag_user(
        UserName="carol",
        Tags=[
            {"Key": "E-mail Address", "Value": "mallory@example.com"},
            {"Key": "Project", "Value": "payments"},
            {"Key": "Nickname", "Value": "caz"},  # self-service tag: fine
        ],
    )
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    iam.attach_user_policy(UserName="carol", PolicyArn=ADMIN)
    # The baseline: a group policy detached and deleted, another attached, a
    # policy's default version changed.
    assume = arn("policy", "opsgate-AssumeRole")
    iam.detach_group_policy(GroupName="opsgate-operators", PolicyArn=assume)
    iam.delete_policy(PolicyArn=assume)
    iam.attach_group_policy(GroupName="opsgate-operators", PolicyArn=ADMIN)
    iam.create_policy_version(
        PolicyArn=arn("policy", "opsgate-SsmSessionManager"),
        PolicyDocument=json.dumps(DOC),
        SetAsDefault=True,
    )
    # Not opsgate's: must be neither reported nor touched.
    iam.create_role(
        RoleName="legacy-admin",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([ADMIN])),
    )
    iam.attach_role_policy(RoleName="legacy-admin", PolicyArn=ADMIN)
    # Carrying opsgate's marks but unknown to the database: reported only.
    iam.create_role(
        RoleName="stray",
        Path="/opsgate/",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([ADMIN])),
        Tags=policies.managed_tags(),
    )
    return data


def test_every_drift_kind_is_reported_repaired_and_gone_on_the_next_run(
    world, account, iam
):
    data = tamper(iam, world)

    report = reconcile.reconcile_account(account)

    assert found(report) == sorted(
        [
            ("group", "opsgate-operators", "policy_extra"),
            ("group", "opsgate-operators", "policy_missing"),
            ("policy", "opsgate-AssumeRole", "missing"),
            ("policy", "opsgate-SsmSessionManager", "policy_document"),
            ("role", "payments-deploy", "policy_extra"),
            ("role", "payments-deploy", "policy_missing"),
            ("role", "payments-deploy", "tag_changed"),
            ("role", "payments-deploy", "tag_extra"),
            ("role", "payments-deploy", "tag_foreign"),
            ("role", "payments-deploy", "trust_escalation"),
            ("role", "payments-ops", "trust_edited"),
            ("role", "payments-readonly", "missing"),
            ("role", data, "orphan_principal"),
            ("role", "stray", "unexpected"),
            ("user", "carol", "group_member_missing"),
            ("user", "carol", "policy_extra"),
            ("user", "carol", "tag_changed"),
            ("user", "carol", "tag_extra"),
            ("user", "dave", "missing"),
        ]
    )
    assert report.errors == []
    assert Drift.objects.filter(resolved_at__isnull=True).count() == 19
    orphan = Drift.objects.get(kind="orphan_principal")
    assert "AIDAEXAMPLEDAVE000001" in orphan.detail
    assert orphan.expected == policies.trust_policy([arn("user", "dave")])

    # AWS is back to the database's state.
    role = iam.get_role(RoleName="payments-deploy")["Role"]
    assert policies.tag_dict(role["Tags"]) == {
        "Project": "payments",
        "SSMSessionRunAs": "deploy",
        "ManagedBy": "opsgate",
        "Team": "red",  # reported, not a key opsgate owns
    }
    assert role["AssumeRolePolicyDocument"] == policies.trust_policy(
        [arn("user", "carol")]
    )
    # GetAccountAuthorizationDetails does not return MaxSessionDuration, so a
    # change to it alone is not detected; the repair's role sync restores it.
    assert role["MaxSessionDuration"] == 3600
    assert sorted(
        p["PolicyArn"]
        for p in iam.list_attached_role_policies(RoleName="payments-deploy")[
            "AttachedPolicies"
        ]
    ) == sorted(baseline.role_policy_arns(account))
    assert iam.list_role_policies(RoleName="payments-deploy")["PolicyNames"] == []
    assert iam.get_role(RoleName="payments-ops")["Role"][
        "AssumeRolePolicyDocument"
    ] == policies.trust_policy([arn("user", "carol")])
    assert iam.get_role(RoleName="payments-readonly")["Role"]["Path"] == "/opsgate/"
    assert iam.get_role(RoleName=data)["Role"][
        "AssumeRolePolicyDocument"
    ] == policies.trust_policy([arn("user", "dave")])
    assert iam.get_user(UserName="dave")["User"]["Path"] == "/opsgate/"
    carol = iam.get_user(UserName="carol")["User"]
    assert policies.tag_dict(carol["Tags"]) == {
        "ManagedBy": "opsgate",
        "E-mail Address": "carol@example.com",
        "Nickname": "caz",
    }
    members = {
        g["GroupName"]
        for name in ("carol", "dave")
        for g in iam.list_groups_for_user(UserName=name)["Groups"]
    }
    assert members == {"opsgate-operators"}
    assert iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == []
    assert sorted(
        p["PolicyArn"]
        for p in iam.list_attached_group_policies(GroupName="opsgate-operators")[
            "AttachedPolicies"
        ]
    ) == sorted(baseline.group_policy_arns(account))
    for name, document in baseline.baseline_documents(account).items():
        policy = iam.get_policy(PolicyArn=arn("policy", name))["Policy"]
        version = iam.get_policy_version(
            PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
        assert policies.same_document(version, document), name
    # Not opsgate's: untouched. Unknown to the database: still there.
    assert iam.list_attached_role_policies(RoleName="legacy-admin")[
        "AttachedPolicies"
    ] == [{"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}]
    assert iam.get_role(RoleName="stray")["Role"]["RoleName"] == "stray"
    assert AuditEvent.objects.filter(action="reconcile.repair").count() == 7
    assert set(
        Drift.objects.filter(repaired_at__isnull=False).values_list("name", flat=True)
    ) == {
        "opsgate-operators",
        "opsgate-AssumeRole",
        "opsgate-SsmSessionManager",
        "payments-deploy",
        "payments-ops",
        "payments-readonly",
        data,
        "carol",
        "dave",
    }

    again = reconcile.reconcile_account(account)
    assert found(again) == [
        ("role", "payments-deploy", "tag_foreign"),
        ("role", "stray", "unexpected"),
    ]
    assert again.repaired == []
    assert Drift.objects.filter(resolved_at__isnull=True).count() == 2
    first = Drift.objects.get(kind="tag_foreign")
    assert first.first_seen < first.last_seen


def test_objects_synced_moments_ago_are_left_alone(
    aws_env, carol, bob, deploy_role, account, iam
):
    grant(carol, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)  # also creates carol and the baseline
    iam.tag_role(RoleName="payments-deploy", Tags=[{"Key": "opsgate-x", "Value": "1"}])

    report = reconcile.reconcile_account(account)  # default: 5 quiet minutes

    assert "role payments-deploy" in report.skipped
    assert found(report) == []
    tags = iam.get_role(RoleName="payments-deploy")["Role"]["Tags"]
    assert policies.tag_dict(tags)["opsgate-x"] == "1"


def test_no_repair_records_drift_and_changes_nothing(world, account, iam, capsys):
    iam.untag_role(RoleName="payments-deploy", TagKeys=["SSMSessionRunAs"])
    iam.attach_role_policy(RoleName="payments-ops", PolicyArn=ADMIN)

    call_command("reconcile", "--no-repair")

    out = capsys.readouterr().out
    assert "2 drift(s)" in out
    assert "role payments-deploy: tag_changed" in out
    assert "role payments-ops: policy_extra" in out
    assert Drift.objects.filter(repaired_at__isnull=True).count() == 2
    tags = policies.tag_dict(iam.get_role(RoleName="payments-deploy")["Role"]["Tags"])
    assert "SSMSessionRunAs" not in tags
    assert ADMIN in [
        p["PolicyArn"]
        for p in iam.list_attached_role_policies(RoleName="payments-ops")[
            "AttachedPolicies"
        ]
    ]

    call_command("reconcile")
    assert "SSMSessionRunAs" in policies.tag_dict(
        iam.get_role(RoleName="payments-deploy")["Role"]["Tags"]
    )


def test_a_role_of_the_same_name_that_is_not_opsgates_is_reported_not_touched(
    world, account, iam
):
    for policy in iam.list_attached_role_policies(RoleName="payments-ops")[
        "AttachedPolicies"
    ]:
        iam.detach_role_policy(RoleName="payments-ops", PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName="payments-ops")
    iam.create_role(
        RoleName="payments-ops",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([ADMIN])),
    )
    report = reconcile.reconcile_account(account)
    assert found(report) == [("role", "payments-ops", "not_owned")]
    assert iam.get_role(RoleName="payments-ops")["Role"]["Path"] == "/"


def test_the_periodic_task_reconciles_every_account(world, account):
    from provisioning import tasks

    result = tasks.reconcile_accounts.apply().get()
    assert [r["drift"] for r in result] == [[]]


def test_an_offboarded_users_iam_user_still_in_aws_is_deleted(
    world, account, iam, alice
):
    from accounts_app.services import people
    from tests.faults import injected, service_credentials_xml

    carol = IamUser.objects.get(name="carol")
    people.person_offboard(iam_user=carol, actor=alice.user)
    for role in OperationRole.objects.all():
        sync.role_sync(role_id=role.pk)
    # The deletion never reached AWS (say, a worker killed mid-way and the
    # record marked done by hand).
    IamUser.objects.filter(pk=carol.pk).update(applied_version=10, desired_version=10)

    with injected(account) as faults:
        faults.answer(
            "ListServiceSpecificCredentials", service_credentials_xml("carol", [])
        )
        report = reconcile.reconcile_account(account)
    assert ("user", "carol", "extra") in found(report)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="carol")
    assert found(reconcile.reconcile_account(account)) == []


def test_read_account_follows_every_page_with_the_four_filters():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("iam", region_name="us-east-1")
    filters = ["User", "Group", "Role", "LocalManagedPolicy"]
    user = {
        "UserName": "carol",
        "Path": "/opsgate/",
        "UserId": "AIDAEXAMPLECAROL00001",
        "Arn": arn("user", "carol"),
    }
    with Stubber(client) as stub:
        stub.add_response(
            "get_account_authorization_details",
            {"UserDetailList": [user], "IsTruncated": True, "Marker": "m2"},
            {"Filter": filters},
        )
        stub.add_response(
            "get_account_authorization_details",
            {
                "RoleDetailList": [{"RoleName": "Payments-Deploy", "Path": "/"}],
                "Policies": [{"Arn": arn("policy", "p"), "PolicyName": "p"}],
                "IsTruncated": False,
            },
            {"Filter": filters, "Marker": "m2"},
        )
        state = drift_checks.read_account(client)
        stub.assert_no_pending_responses()
    assert list(state["users"]) == ["carol"]
    assert list(state["roles"]) == ["payments-deploy"]
    assert list(state["policies"]) == [arn("policy", "p")]


def test_a_role_without_grants_recreated_behind_opsgates_back_is_deleted(
    world, account, iam, carol
):
    g = AccessRequest.objects.get(requester=carol, role=world["readonly"])
    access_requests.access_request_revoke(access_request=g, actor=carol.user)
    sync.role_sync(role_id=world["readonly"].pk)
    iam.create_role(
        RoleName="payments-readonly",
        Path="/opsgate/",
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([ADMIN])),
        Tags=policies.role_tags(project="payments", os_user="readonly"),
    )
    report = reconcile.reconcile_account(account)
    assert found(report) == [("role", "payments-readonly", "extra")]
    names = [r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]]
    assert "payments-readonly" not in names


def test_beat_runs_expiry_and_reconcile_tasks():
    from django.conf import settings

    from portal.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "provisioning.tasks.expire_access",
        "provisioning.tasks.reconcile_accounts",
    } <= tasks
    assert tasks <= set(app.tasks)


CAROL = arn("user", "carol")


def _allow(principal, actions):
    return {"Effect": "Allow", "Principal": principal, "Action": actions}


@pytest.mark.parametrize(
    ("extra_statement", "kinds"),
    [
        (_allow({"AWS": CAROL}, "sts:TagSession"), ["trust_escalation"]),
        (_allow({"AWS": "*"}, "sts:AssumeRole"), ["trust_escalation"]),
        (_allow("*", "sts:AssumeRole"), ["trust_escalation"]),
        (_allow({"AWS": CAROL}, "sts:*"), ["trust_escalation"]),
        (
            _allow({"AWS": "AIDAEXAMPLEGONE00001"}, "sts:AssumeRole"),
            ["orphan_principal"],
        ),
        (_allow({"AWS": arn("user", "mallory")}, "sts:AssumeRole"), ["trust_edited"]),
        (None, []),
    ],
)
def test_trust_differences_are_classified(extra_statement, kinds):
    expected = policies.trust_policy([CAROL])
    actual = policies.trust_policy([CAROL])
    if extra_statement:
        actual["Statement"].append(extra_statement)
    findings = drift_checks.roles._trust_findings("r", actual, expected, obj=None)
    assert [f.kind for f in findings] == kinds

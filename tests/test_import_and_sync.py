"""Against moto: the stack's own example file, imported and provisioned, leaves
AWS holding exactly the DESIGN §1 state; a second run writes nothing."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
    SyncStatus,
)
from provisioning import aws, policies
from tests.conftest import ACCOUNT_ID

EXAMPLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "examples"
    / "operation-users.json"
)
if not EXAMPLE.exists():  # CI copies shared/ beside the clone; keep a copy for safety
    EXAMPLE = Path(__file__).resolve().parent / "data" / "operation-users.json"

pytestmark = pytest.mark.django_db


def writes(calls):
    return [c for c in calls if aws.is_write(c)]


def user_arn(name):
    return f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/{name}"


def test_example_file_is_the_one_we_expect():
    data = json.loads(EXAMPLE.read_text())
    assert [u["userName"] for u in data["users"]] == [
        "non-97-test-user1",
        "non-97-test-user2",
    ]


def test_import_of_the_stack_example_provisions_the_design_state(aws_env, iam):
    call_command("import_operation_users", str(EXAMPLE), "--sync")

    # The group: four customer policies plus the AWS-managed one.
    group = iam.get_group(GroupName="opsgate-operators")
    assert group["Group"]["Path"] == "/opsgate/"
    assert sorted(u["UserName"] for u in group["Users"]) == [
        "non-97-test-user1",
        "non-97-test-user2",
    ]
    attached = {
        p["PolicyName"]: p["PolicyArn"]
        for p in iam.list_attached_group_policies(GroupName="opsgate-operators")[
            "AttachedPolicies"
        ]
    }
    assert sorted(attached) == [
        "IAMSelfManageServiceSpecificCredentials",
        "opsgate-AssumeRole",
        "opsgate-EnforceMfa",
        "opsgate-SelfAccessKeys",
        "opsgate-SelfTags",
    ]
    enforce = iam.get_policy(PolicyArn=attached["opsgate-EnforceMfa"])["Policy"]
    document = iam.get_policy_version(
        PolicyArn=enforce["Arn"], VersionId=enforce["DefaultVersionId"]
    )["PolicyVersion"]
    assert policies.same_document(
        document["Document"],
        policies.enforce_mfa_policy(account_id=ACCOUNT_ID, path="/opsgate/"),
    )

    # Users: path, tags in the CreateUser call, membership.
    user1 = iam.get_user(UserName="non-97-test-user1")["User"]
    assert user1["Path"] == "/opsgate/"
    assert policies.tag_dict(user1["Tags"]) == {
        "ManagedBy": "opsgate",
        "E-mail Address": "test-user1@example.com",
    }
    user2 = iam.get_user(UserName="non-97-test-user2")["User"]
    assert policies.tag_dict(user2["Tags"]) == {"ManagedBy": "opsgate"}

    # Three roles with their tags, trust and the two policies.
    expected = {
        "test-project-1-os-user1": (
            "Test Project 1",
            "os-user1",
            [user_arn("non-97-test-user1")],
        ),
        "test-project-2-os-user2": (
            "Test Project 2",
            "os-user2",
            [user_arn("non-97-test-user2")],
        ),
        "non-97-project-ope-role": (
            "Test Project 2",
            "os-user3",
            [
                "arn:aws:iam::111122223333:user/non-97-test-user3",
                user_arn("non-97-test-user1"),
            ],
        ),
    }
    roles = iam.list_roles(PathPrefix="/opsgate/")["Roles"]
    assert sorted(r["RoleName"] for r in roles) == sorted(expected)
    for name, (project, os_user, principals) in expected.items():
        role = iam.get_role(RoleName=name)["Role"]
        assert policies.tag_dict(role["Tags"]) == {
            "Project": project,
            "SSMSessionRunAs": os_user,
            "ManagedBy": "opsgate",
        }
        assert policies.same_document(
            role["AssumeRolePolicyDocument"], policies.trust_policy(principals)
        )
        assert role["MaxSessionDuration"] == 3600
        attached_role = sorted(
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        )
        assert attached_role == ["opsgate-Ec2StartStop", "opsgate-SsmSessionManager"]

    # And the database says so.
    assert all(u.sync_status == SyncStatus.IN_SYNC for u in IamUser.objects.all())
    assert all(r.sync_status == SyncStatus.IN_SYNC for r in OperationRole.objects.all())
    assert AccessRequest.objects.filter(provisioned_at__isnull=True).count() == 0
    assert Project.objects.count() == 2


def test_a_second_import_changes_nothing_in_the_database_or_aws(aws_env):
    call_command("import_operation_users", str(EXAMPLE), "--sync")
    rows = (
        IamUser.objects.count(),
        AccessRequest.objects.count(),
        AuditEvent.objects.count(),
    )
    with aws.observe_calls() as calls:
        call_command("import_operation_users", str(EXAMPLE), "--sync")
        from provisioning import sync

        for role in OperationRole.objects.all():
            sync.role_sync(role_id=role.pk)
        for user in IamUser.objects.all():
            sync.iam_user_sync(iam_user_id=user.pk)
    assert writes(calls) == []
    assert rows == (
        IamUser.objects.count(),
        AccessRequest.objects.count(),
        AuditEvent.objects.count(),
    )


def test_the_wrapped_env_props_form_is_accepted(aws_env, tmp_path):
    data = json.loads(EXAMPLE.read_text())
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"env": {"account": "123456789012"}, "props": data}))
    call_command("import_operation_users", str(wrapped))
    assert OperationRole.objects.count() == 3
    assert AccessRequest.objects.filter(status="approved").count() == 3


def test_an_invalid_file_writes_nothing_and_lists_every_error_with_its_place(
    aws_env, tmp_path, capsys
):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "users": [
                    {"userName": "ok-user"},
                    {"userName": "bad user"},
                    {"userName": "OK-USER"},
                ],
                "roles": [
                    {
                        "rolePrincipalUserNames": ["ok-user"],
                        "projectName": "aws:nope",
                        "ssmSessionRunAs": "root",
                    },
                    {
                        "rolePrincipalUserNames": ["ghost"],
                        "projectName": "fine",
                        "ssmSessionRunAs": "ops",
                        "rolePrincipalUserArns": ["arn:aws:iam::111122223333:root"],
                    },
                ],
            }
        )
    )
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_operation_users", str(bad))
    err = capsys.readouterr().err
    for place in [
        "users[1].userName",
        "users[2].userName",
        "roles[0].projectName",
        "roles[0].ssmSessionRunAs",
        "roles[1].rolePrincipalUserNames[0]",
        "roles[1].rolePrincipalUserArns[0]",
    ]:
        assert place in err
    assert IamUser.objects.count() == 0
    assert Project.objects.count() == 0
    assert AuditEvent.objects.filter(action__startswith="person").count() == 0


def test_a_file_that_is_not_json_is_reported_with_line_and_column(aws_env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": [}')
    with pytest.raises(CommandError, match=r"bad.json:1:\d+: not JSON"):
        call_command("import_operation_users", str(bad))

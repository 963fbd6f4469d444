"""opsgate's provisioning flows run with nothing but its least-privilege policy.

Two checks, because moto only enforces actions: (1) moto's IAM access checks on,
opsgate signed in as a user holding the policy's allowed actions, and every flow
passes (and fails when one action is taken away); (2) every call of those flows,
with its resource ARN and parameters, is allowed by the full policy, resources
and conditions included, by the evaluator in tests/iam_sim.py.
"""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from moto.core.authorization import enable_iam_authentication

from accounts_app import services as people
from accounts_app.models import IamUser
from provisioning import aws, policies, services, sync
from provisioning.models import AccessRequest, OperationRole
from tests import iam_sim
from tests.conftest import ACCOUNT_ID

EXAMPLE = Path(__file__).resolve().parent / "data" / "operation-users.json"
pytestmark = pytest.mark.django_db


def service_policy() -> dict:
    return policies.opsgate_service_policy(
        account_id=ACCOUNT_ID,
        path="/opsgate/",
        prefix="opsgate-",
        group_name="opsgate-operators",
        boundary_name="opsgate-OperationRoleBoundary",
    )


BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/opsgate/opsgate-OperationRoleBoundary"


@pytest.fixture(autouse=True)
def _no_service_credentials_api(settings):
    # moto answers ListServiceSpecificCredentials with a 500; the offboarding
    # tests cover that step with answers injected at the HTTP layer.
    settings.OPSGATE = {**settings.OPSGATE, "DELETE_SERVICE_CREDENTIALS": False}


@pytest.fixture
def as_opsgate(aws_env, iam, monkeypatch):
    """Sign opsgate's clients in as a user holding `document` only."""

    def sign_in(document: dict) -> None:
        iam.create_user(UserName="opsgate-service")
        iam.put_user_policy(
            UserName="opsgate-service",
            PolicyName="opsgate",
            PolicyDocument=json.dumps(document),
        )
        key = iam.create_access_key(UserName="opsgate-service")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        aws.reset_clients()

    yield sign_in
    aws.reset_clients()


@pytest.fixture
def recorded():
    """(service, operation, params) of every AWS call opsgate makes."""
    calls = []

    def record(params, model, **kwargs):
        calls.append((model.service_model.endpoint_prefix, model.name, dict(params)))

    original = aws.client

    def client(service, account=None):
        built = original(service, account)
        if hasattr(built, "meta"):  # not the fake SSM client (see conftest)
            built.meta.events.register_first(
                "provide-client-params", record, unique_id="test-recorder"
            )
        return built

    aws.client = client
    yield calls
    aws.client = original


def run_every_flow(alice, bob) -> None:
    """Everything opsgate provisions: baseline, users, roles, a grant, a revoke
    that leaves a session deny, a revoke that empties a role, an offboarding,
    a console password and a reconcile."""
    from provisioning import reconcile

    call_command("import_operation_users", str(EXAMPLE), "--sync")
    account = OperationRole.objects.first().account
    carol = people.person_add(actor=alice.user, account=account, iam_user_name="carol")
    sync.iam_user_sync(iam_user_id=carol.pk)
    role = OperationRole.objects.get(role_name="test-project-1-os-user1")
    role.project.approvers.add(bob.user)
    req = services.access_request_create(
        requester=carol, role=role, reason="x", duration_hours=8, actor=carol.user
    )
    services.access_request_approve(access_request=req, approver=bob.user)
    sync.role_sync(role_id=role.pk)
    services.access_request_revoke(access_request=req, actor=alice.user)
    sync.role_sync(role_id=role.pk)  # trust rewritten, live sessions denied
    for grant in AccessRequest.objects.filter(role=role, status="approved"):
        services.access_request_revoke(access_request=grant, actor=alice.user)
    sync.role_sync(role_id=role.pk)  # last grant gone: role deleted
    carol.refresh_from_db()
    people.console_password_create(iam_user=carol, actor=alice.user)
    leaver = IamUser.objects.get(name="non-97-test-user2")
    people.person_offboard(iam_user=leaver, actor=alice.user)
    for each in OperationRole.objects.all():
        sync.role_sync(role_id=each.pk)
    sync.iam_user_sync(iam_user_id=leaver.pk)
    reconcile.reconcile_all(repair=True)


def test_every_flow_passes_moto_access_checks_with_only_the_policy_actions(
    as_opsgate, alice, bob, iam
):
    as_opsgate(iam_sim.moto_projection(service_policy()))
    with enable_iam_authentication():
        run_every_flow(alice, bob)
    names = [r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]]
    assert names == ["non-97-project-ope-role"]
    users = [u["UserName"] for u in iam.list_users(PathPrefix="/opsgate/")["Users"]]
    # alice and bob are people too: the reconcile created their missing users.
    assert sorted(users) == ["alice", "bob", "carol", "non-97-test-user1"]


def test_taking_one_action_away_makes_the_flow_fail_with_access_denied(
    as_opsgate, alice, bob
):
    document = iam_sim.moto_projection(service_policy())
    for statement in document["Statement"]:
        actions = statement["Action"]
        statement["Action"] = [
            a
            for a in ([actions] if isinstance(actions, str) else actions)
            if a != "iam:CreateRole"
        ]
    document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    as_opsgate(document)
    with enable_iam_authentication(), pytest.raises(Exception, match="AccessDenied"):
        run_every_flow(alice, bob)


def test_every_call_is_allowed_by_the_full_policy_resources_and_conditions(
    aws_env, recorded, alice, bob, ssm_sessions
):
    run_every_flow(alice, bob)
    policy = service_policy()
    refused = []
    ssm_calls = [("ssm", op, params) for op, params in ssm_sessions.calls]
    assert ("ssm", "DescribeSessions") in [(s, op) for s, op, _ in ssm_calls]
    operations = {op for _, op, _ in recorded}
    assert {
        "PutRolePolicy",
        "DeleteUser",
        "GetAccountAuthorizationDetails",
    } <= operations
    for service, op, params in recorded + ssm_calls:
        allowed, resource = iam_sim.decide(
            policy,
            service,
            op,
            params,
            account_id=ACCOUNT_ID,
            path="/opsgate/",
            boundary=BOUNDARY,
        )
        if not allowed:
            refused.append(f"{service}:{op} on {resource}")
    assert refused == []
    created = [p for s, op, p in recorded if op == "CreateRole"]
    assert created and all(p["PermissionsBoundary"] == BOUNDARY for p in created)
    profiles = [p for s, op, p in recorded if op == "CreateLoginProfile"]
    assert profiles and all(p["PasswordResetRequired"] for p in profiles)


def test_the_policy_refuses_what_opsgate_must_never_do():
    policy = service_policy()
    where = {"account_id": ACCOUNT_ID, "path": "/opsgate/", "boundary": BOUNDARY}
    never = [
        ("iam", "PassRole", {"RoleName": "anything"}),
        (
            "iam",
            "CreateRole",
            {
                "RoleName": "x",
                "Path": "/opsgate/",
                "Tags": [{"Key": "ManagedBy", "Value": "opsgate"}],
            },
        ),  # no boundary
        (
            "iam",
            "CreateRole",
            {"RoleName": "x", "Path": "/opsgate/", "PermissionsBoundary": BOUNDARY},
        ),  # no tag
        (
            "iam",
            "CreateRole",
            {
                "RoleName": "x",
                "Path": "/",
                "PermissionsBoundary": BOUNDARY,
                "Tags": [{"Key": "ManagedBy", "Value": "opsgate"}],
            },
        ),
        ("iam", "CreateUser", {"UserName": "x", "Path": "/opsgate/"}),  # no tag
        ("iam", "DeleteUser", {"UserName": "admin", "Path": "/"}),
        ("iam", "UpdateAssumeRolePolicy", {"RoleName": "admin", "Path": "/"}),
        ("iam", "CreatePolicyVersion", {"PolicyArn": BOUNDARY}),
        ("iam", "DeleteRolePermissionsBoundary", {"RoleName": "x"}),
        (
            "iam",
            "AttachRolePolicy",
            {
                "RoleName": "x",
                "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
            },
        ),
        (
            "iam",
            "AttachGroupPolicy",
            {
                "GroupName": "opsgate-operators",
                "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
            },
        ),
        ("iam", "CreateAccessKey", {"UserName": "carol"}),
    ]
    allowed = [
        f"{s}:{op} {p}"
        for s, op, p in never
        if iam_sim.decide(policy, s, op, p, **where)[0]
    ]
    assert allowed == []


def test_a_role_created_without_the_boundary_gets_it_back(
    aws_env, iam, carol, bob, deploy_role
):
    req = services.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
    )
    services.access_request_approve(access_request=req, approver=bob.user)
    sync.role_sync(role_id=deploy_role.pk)
    iam.delete_role_permissions_boundary(RoleName="payments-deploy")
    deploy_role.bump()
    sync.role_sync(role_id=deploy_role.pk)
    role = iam.get_role(RoleName="payments-deploy")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY


def test_access_denied_from_aws_is_a_permanent_error_naming_the_action(
    as_opsgate, alice, bob
):
    as_opsgate(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}
            ],
        }
    )
    with enable_iam_authentication(), pytest.raises(CommandError) as info:
        run_every_flow(alice, bob)
    assert "iam:GetPolicy failed: AccessDenied" in str(info.value)
    assert OperationRole.objects.filter(applied_version__gt=0).count() == 0

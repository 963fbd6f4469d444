"""opsgate's provisioning flows run with nothing but its least-privilege policy.

Two checks, because moto only enforces actions: (1) moto's IAM access checks on,
opsgate signed in as a user holding the policy's allowed actions, and every flow
passes (and fails when one action is taken away); (2) every call of those flows,
with its resource ARN and parameters, is allowed by the full policy, resources
and conditions included, by the evaluator in tests/iam_sim.py.

Then the escalation questions (issue 15): what can whoever holds opsgate's
credentials do, directly or through an IAM user they create with them and put
in a group whose policies they rewrote? The answers are evaluated with
tests/iam_sim.py, permissions boundaries and explicit denies included.
"""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from moto.core.authorization import enable_iam_authentication

from accounts_app.models import AccessRequest, IamUser, OperationRole
from accounts_app.services import access_requests, people
from provisioning import aws, direct, policies, sync
from provisioning import service_policy as service_policies
from tests import iam_sim
from tests.conftest import ACCOUNT_ID

EXAMPLE = Path(__file__).resolve().parent / "data" / "operation-users.json"
pytestmark = pytest.mark.django_db


def service_policy() -> dict:
    return service_policies.opsgate_service_policy(
        account_id=ACCOUNT_ID,
        path="/opsgate/",
        prefix="opsgate-",
        group_name="opsgate-operators",
        boundary_name="opsgate-OperationRoleBoundary",
        user_boundary_name="opsgate-OperatorBoundary",
    )


BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/opsgate/opsgate-OperationRoleBoundary"
USER_BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/opsgate/opsgate-OperatorBoundary"


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

    def client(service, account=None, **kwargs):
        built = original(service, account, **kwargs)
        if hasattr(built, "meta"):  # SSM sessions are faked (see conftest)
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
    req = access_requests.access_request_create(
        requester=carol, role=role, reason="x", duration_hours=8, actor=carol.user
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    sync.role_sync(role_id=role.pk)
    access_requests.access_request_revoke(access_request=req, actor=alice.user)
    sync.role_sync(role_id=role.pk)  # trust rewritten, live sessions denied
    for grant in AccessRequest.objects.filter(role=role, status="approved"):
        access_requests.access_request_revoke(access_request=grant, actor=alice.user)
    sync.role_sync(role_id=role.pk)  # last grant gone: role deleted
    carol.refresh_from_db()
    direct.console_password_create(iam_user=carol, actor=alice.user)
    leaver = IamUser.objects.get(name="non-97-test-user2")
    people.person_offboard(iam_user=leaver, actor=alice.user)
    for each in OperationRole.objects.all():
        sync.role_sync(role_id=each.pk)
    sync.iam_user_sync(iam_user_id=leaver.pk)
    reconcile.reconcile_all(repair=True)


def legacy_user(iam, name: str) -> None:
    """An IAM user opsgate created before the user boundary existed."""
    iam.create_user(UserName=name, Path="/opsgate/", Tags=policies.user_tags())


def test_every_flow_passes_moto_access_checks_with_only_the_policy_actions(
    as_opsgate, alice, bob, iam
):
    legacy_user(iam, "alice")
    as_opsgate(iam_sim.moto_projection(service_policy()))
    with enable_iam_authentication():
        run_every_flow(alice, bob)
    names = [r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]]
    assert names == ["non-97-project-ope-role"]
    users = [u["UserName"] for u in iam.list_users(PathPrefix="/opsgate/")["Users"]]
    # alice and bob are people too: the reconcile created their missing users.
    assert sorted(users) == ["alice", "bob", "carol", "non-97-test-user1"]
    boundaries = {
        name: iam.get_user(UserName=name)["User"]["PermissionsBoundary"]
        for name in users
    }
    assert {b["PermissionsBoundaryArn"] for b in boundaries.values()} == {USER_BOUNDARY}


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
    aws_env, iam, recorded, alice, bob, ssm_sessions
):
    legacy_user(iam, "alice")
    run_every_flow(alice, bob)
    policy = service_policy()
    refused = []
    ssm_calls = [("ssm", op, params) for op, params in ssm_sessions.calls]
    assert ("ssm", "DescribeSessions") in [(s, op) for s, op, _ in ssm_calls]
    operations = {op for _, op, _ in recorded}
    assert {
        "PutRolePolicy",
        "PutUserPermissionsBoundary",
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
    users = [p for s, op, p in recorded if op == "CreateUser"]
    assert users and all(p["PermissionsBoundary"] == USER_BOUNDARY for p in users)
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
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
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
    # No role sync succeeded (roles without principals are in sync from the
    # start: "not in AWS" is their desired state).
    assert not OperationRole.objects.filter(last_synced_at__isnull=False).exists()


# --- Escalation questions -----------------------------------------------------

P = "/opsgate/"
IAM = f"arn:aws:iam::{ACCOUNT_ID}"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
MANAGED = [{"Key": "ManagedBy", "Value": "opsgate"}]
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _new_user(**extra) -> dict:
    return {"UserName": "mallory", "Path": P, "Tags": MANAGED, **extra}


def _boundary_writes() -> list:
    questions = []
    for arn in (BOUNDARY, USER_BOUNDARY):
        name = arn.rsplit("/", 1)[1]
        for op, params in (
            ("CreatePolicy", {"PolicyName": name, "Path": P, "Tags": MANAGED}),
            ("CreatePolicyVersion", {"PolicyArn": arn}),
            ("SetDefaultPolicyVersion", {"PolicyArn": arn, "VersionId": "v1"}),
            ("DeletePolicyVersion", {"PolicyArn": arn, "VersionId": "v1"}),
            ("DeletePolicy", {"PolicyArn": arn}),
            ("TagPolicy", {"PolicyArn": arn, "Tags": MANAGED}),
            ("UntagPolicy", {"PolicyArn": arn, "TagKeys": ["ManagedBy"]}),
        ):
            questions.append((f"{op} on {name}", "iam", op, params, False))
    return questions


# (question, service, operation, parameters, may opsgate's credentials do it?)
OPSGATE_QUESTIONS = [
    ("create a user without a boundary", "iam", "CreateUser", _new_user(), False),
    (
        "create a user with AdministratorAccess as its boundary",
        "iam",
        "CreateUser",
        _new_user(PermissionsBoundary=ADMIN_POLICY),
        False,
    ),
    (
        "create a user with the role boundary",
        "iam",
        "CreateUser",
        _new_user(PermissionsBoundary=BOUNDARY),
        False,
    ),
    (
        "create a user outside /opsgate/ with the user boundary",
        "iam",
        "CreateUser",
        _new_user(Path="/", PermissionsBoundary=USER_BOUNDARY),
        False,
    ),
    (
        "give one of its users another boundary",
        "iam",
        "PutUserPermissionsBoundary",
        {"UserName": "carol", "PermissionsBoundary": ADMIN_POLICY},
        False,
    ),
    (
        "remove a user's boundary",
        "iam",
        "DeleteUserPermissionsBoundary",
        {"UserName": "carol"},
        False,
    ),
    (
        "remove a role's boundary",
        "iam",
        "DeleteRolePermissionsBoundary",
        {"RoleName": "payments-deploy"},
        False,
    ),
    *_boundary_writes(),
    (
        "attach AdministratorAccess to a user",
        "iam",
        "AttachUserPolicy",
        {"UserName": "carol", "PolicyArn": ADMIN_POLICY},
        False,
    ),
    (
        "put an inline policy on a user",
        "iam",
        "PutUserPolicy",
        {"UserName": "carol", "PolicyName": "x"},
        False,
    ),
    (
        "create an access key for a user",
        "iam",
        "CreateAccessKey",
        {"UserName": "carol"},
        False,
    ),
    (
        "reset a user's console password",
        "iam",
        "UpdateLoginProfile",
        {"UserName": "carol"},
        False,
    ),
    ("pass a role to a service", "iam", "PassRole", {"RoleName": "x"}, False),
    (
        "create a role without the role boundary",
        "iam",
        "CreateRole",
        {"RoleName": "x", "Path": P, "Tags": MANAGED},
        False,
    ),
    (
        "give a role the user boundary",
        "iam",
        "PutRolePermissionsBoundary",
        {"RoleName": "payments-deploy", "PermissionsBoundary": USER_BOUNDARY},
        False,
    ),
    # What opsgate does legitimately.
    (
        "create a tagged user with the user boundary",
        "iam",
        "CreateUser",
        _new_user(PermissionsBoundary=USER_BOUNDARY),
        True,
    ),
    (
        "give one of its users (created before) the user boundary",
        "iam",
        "PutUserPermissionsBoundary",
        {"UserName": "carol", "PermissionsBoundary": USER_BOUNDARY},
        True,
    ),
    (
        "add a user to the operators group",
        "iam",
        "AddUserToGroup",
        {"GroupName": "opsgate-operators", "UserName": "mallory"},
        True,
    ),
    (
        "create a console password for one of its users",
        "iam",
        "CreateLoginProfile",
        {"UserName": "mallory"},
        True,
    ),
    # Still allowed, and no longer an escalation: the operators are capped by
    # the user boundary whatever the group holds (see the operator questions).
    (
        "rewrite the operators group's policy opsgate-EnforceMfa",
        "iam",
        "CreatePolicyVersion",
        {"PolicyArn": f"{IAM}:policy/opsgate/opsgate-EnforceMfa"},
        True,
    ),
    (
        "create a new policy opsgate-Backdoor",
        "iam",
        "CreatePolicy",
        {"PolicyName": "opsgate-Backdoor", "Path": P, "Tags": MANAGED},
        True,
    ),
    (
        "attach opsgate-Backdoor to the operators group",
        "iam",
        "AttachGroupPolicy",
        {
            "GroupName": "opsgate-operators",
            "PolicyArn": f"{IAM}:policy/opsgate/opsgate-Backdoor",
        },
        True,
    ),
]


def opsgate_may(policy: dict, service: str, op: str, params: dict) -> bool:
    where = {"account_id": ACCOUNT_ID, "path": P, "boundary": BOUNDARY}
    return iam_sim.decide(policy, service, op, params, **where)[0]


@pytest.mark.parametrize(
    ("service", "op", "params", "expected"),
    [q[1:] for q in OPSGATE_QUESTIONS],
    ids=[q[0] for q in OPSGATE_QUESTIONS],
)
def test_what_opsgates_credentials_may_do(service, op, params, expected):
    assert opsgate_may(service_policy(), service, op, params) is expected


# --- Run Command: the OS run-as users (issue 25) ----------------------------------

ENSURE, CHECK = "opsgate-EnsureOsUser", "opsgate-CheckOsUser"
TAGGED, UNTAGGED, EMPTY_TAG = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2", "i-0c3"
HYBRID = "mi-0ddddddddddddddd4"
INSTANCE_TAGS = {
    TAGGED: {"Project": "payments", "Name": "web-1"},
    UNTAGGED: {"Name": "bastion"},
    EMPTY_TAG: {"Project": ""},
    HYBRID: {"Project": "payments"},
}


def _send(document: str, *instances: str, **extra) -> dict:
    return {
        "DocumentName": document,
        "InstanceIds": list(instances),
        "Parameters": {"UserName": ["deploy"]},
        **extra,
    }


# (question, operation, parameters, may opsgate's credentials do it?)
RUN_COMMAND_QUESTIONS = [
    (
        "run AWS-RunShellScript on a project instance",
        "SendCommand",
        _send("AWS-RunShellScript", TAGGED),
        False,
    ),
    (
        "run AWS-RunPowerShellScript on a project instance",
        "SendCommand",
        _send("AWS-RunPowerShellScript", TAGGED),
        False,
    ),
    (
        "run a document of its own naming",
        "SendCommand",
        _send("opsgate-Backdoor", TAGGED),
        False,
    ),
    (
        "run a shared document of another account",
        "SendCommand",
        _send(
            "arn:aws:ssm:us-east-1:210987654321:document/opsgate-EnsureOsUser", TAGGED
        ),
        False,
    ),
    (
        "run opsgate-EnsureOsUser on an instance without a Project tag",
        "SendCommand",
        _send(ENSURE, UNTAGGED),
        False,
    ),
    (
        "run opsgate-CheckOsUser on an instance without a Project tag",
        "SendCommand",
        _send(CHECK, UNTAGGED),
        False,
    ),
    (
        "run opsgate-EnsureOsUser on an instance whose Project tag is empty",
        "SendCommand",
        _send(ENSURE, EMPTY_TAG),
        False,
    ),
    (
        "run opsgate-EnsureOsUser on a project instance and an untagged one",
        "SendCommand",
        _send(ENSURE, TAGGED, UNTAGGED),
        False,
    ),
    (
        "run opsgate-EnsureOsUser on the instances of another tag",
        "SendCommand",
        {
            "DocumentName": ENSURE,
            "Targets": [{"Key": "tag:Environment", "Values": ["prod"]}],
            "Parameters": {"UserName": ["deploy"]},
        },
        False,
    ),
    (
        "send opsgate-EnsureOsUser's output to an S3 bucket",
        "SendCommand",
        _send(ENSURE, TAGGED, OutputS3BucketName="exfiltrate"),
        False,
    ),
    *[
        (f"{op} {name}", op, {"Name": name, "Content": "{}"}, False)
        for op in (
            "CreateDocument",
            "UpdateDocument",
            "UpdateDocumentDefaultVersion",
            "DeleteDocument",
            "ModifyDocumentPermission",
        )
        for name in (ENSURE, "opsgate-Backdoor")
    ],
    # What opsgate does legitimately.
    (
        "run opsgate-CheckOsUser on a project instance",
        "SendCommand",
        _send(CHECK, TAGGED),
        True,
    ),
    (
        "run opsgate-EnsureOsUser on a project instance",
        "SendCommand",
        _send(ENSURE, TAGGED),
        True,
    ),
    (
        "run opsgate-EnsureOsUser on a project's hybrid (managed) instance",
        "SendCommand",
        _send(ENSURE, HYBRID),
        True,
    ),
    (
        "run opsgate-EnsureOsUser on the instances tagged with a project",
        "SendCommand",
        {
            "DocumentName": ENSURE,
            "Targets": [{"Key": "tag:Project", "Values": ["payments"]}],
            "Parameters": {"UserName": ["deploy"]},
        },
        True,
    ),
    (
        "read a command's result",
        "GetCommandInvocation",
        {"CommandId": "c", "InstanceId": TAGGED},
        True,
    ),
    (
        "list a command's invocations",
        "ListCommandInvocations",
        {"CommandId": "c"},
        True,
    ),
    ("list the managed instances", "DescribeInstanceInformation", {}, True),
]
RUN_COMMAND_NEVER = [q for q in RUN_COMMAND_QUESTIONS if not q[3]]
ALLOW_ALL_SSM = {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}


def ssm_may(policy: dict, op: str, params: dict) -> bool:
    where = {"account_id": ACCOUNT_ID, "path": P, "boundary": BOUNDARY}
    return iam_sim.decide(
        policy, "ssm", op, params, instance_tags=INSTANCE_TAGS, **where
    )[0]


@pytest.mark.parametrize(
    ("op", "params", "expected"),
    [q[1:] for q in RUN_COMMAND_QUESTIONS],
    ids=[q[0] for q in RUN_COMMAND_QUESTIONS],
)
def test_what_opsgates_credentials_may_run_on_instances(op, params, expected):
    assert ssm_may(service_policy(), op, params) is expected


@pytest.mark.parametrize(
    ("op", "params"),
    [q[1:3] for q in RUN_COMMAND_NEVER],
    ids=[q[0] for q in RUN_COMMAND_NEVER],
)
def test_an_allow_added_later_still_cannot_run_another_document_or_reach_others(
    op, params
):
    """The explicit denies hold when someone adds ssm:* on * to the policy."""
    widened = service_policy()
    widened["Statement"].append(ALLOW_ALL_SSM)
    assert not ssm_may(widened, op, params)


def test_without_the_denies_ssm_star_would_run_anything():
    """A positive control: the same questions, the denies taken out."""
    widened = service_policy()
    widened["Statement"] = [
        s for s in widened["Statement"] if s["Effect"] == "Allow"
    ] + [ALLOW_ALL_SSM]
    assert all(ssm_may(widened, op, params) for _, op, params, _ in RUN_COMMAND_NEVER)


def test_the_service_policy_runs_exactly_the_two_documents_on_tagged_instances():
    statements = {s["Sid"]: s for s in service_policy()["Statement"]}
    region = f"arn:aws:ssm:*:{ACCOUNT_ID}"
    assert statements["RunOnlyTheOsUserDocuments"]["Resource"] == [
        f"{region}:document/opsgate-CheckOsUser",
        f"{region}:document/opsgate-EnsureOsUser",
    ]
    assert statements["RunCommandsOnProjectInstances"] == {
        "Sid": "RunCommandsOnProjectInstances",
        "Effect": "Allow",
        "Action": "ssm:SendCommand",
        "Resource": [
            f"arn:aws:ec2:*:{ACCOUNT_ID}:instance/*",
            f"{region}:managed-instance/*",
        ],
        "Condition": {"StringLike": {"ssm:resourceTag/Project": "?*"}},
    }
    allowed = {
        action
        for s in statements.values()
        if s["Effect"] == "Allow"
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if action.startswith("ssm:")
    }
    assert allowed == {
        "ssm:DescribeInstanceInformation",
        "ssm:DescribeSessions",
        "ssm:GetCommandInvocation",
        "ssm:ListCommandInvocations",
        "ssm:SendCommand",
        "ssm:TerminateSession",
    }


def boundaries_a_new_user_can_get(policy: dict) -> dict[str, dict | None]:
    """Every ceiling a user created with `policy` can end up with: no
    boundary, another one, or the user boundary (by CreateUser, or by
    PutUserPermissionsBoundary or DeleteUserPermissionsBoundary afterwards)."""
    candidates = {
        "no boundary": (None, None),
        "AdministratorAccess": (ADMIN_POLICY, ALLOW_ALL),
        "the role boundary": (BOUNDARY, policies.role_boundary_policy()),
        "the user boundary": (
            USER_BOUNDARY,
            policies.user_boundary_policy(account_id=ACCOUNT_ID, path=P),
        ),
    }
    found = {}
    for label, (arn, document) in candidates.items():
        given = {"PermissionsBoundary": arn} if arn else {}
        if opsgate_may(policy, "iam", "CreateUser", _new_user(**given)) or (
            arn
            and opsgate_may(
                policy, "iam", "PutUserPermissionsBoundary", {"UserName": "x", **given}
            )
        ):
            found[label] = document
    if opsgate_may(policy, "iam", "DeleteUserPermissionsBoundary", {"UserName": "x"}):
        found["no boundary"] = None
    return found


def _operator(action: str, resource: str, *, mfa: bool = True, **context):
    return iam_sim.Request(
        action,
        resource,
        {
            "aws:username": "mallory",
            "aws:MultiFactorAuthPresent": "true" if mfa else "false",
            **context,
        },
    )


ME = f"{IAM}:user/opsgate/mallory"
# (question, request by an operator "mallory" with MFA unless said otherwise)
OPERATOR_NEVER = [
    (
        "create an access key for another operator",
        "iam:CreateAccessKey",
        f"{IAM}:user/opsgate/alice",
        {},
    ),
    (
        "create an access key for an admin outside opsgate",
        "iam:CreateAccessKey",
        f"{IAM}:user/admin",
        {},
    ),
    (
        "create a login profile for another operator",
        "iam:CreateLoginProfile",
        f"{IAM}:user/opsgate/alice",
        {},
    ),
    (
        "reset another operator's password",
        "iam:UpdateLoginProfile",
        f"{IAM}:user/opsgate/alice",
        {},
    ),
    (
        "register an MFA device named after another user",
        "iam:CreateVirtualMFADevice",
        f"{IAM}:mfa/alice",
        {},
    ),
    (
        "attach AdministratorAccess to themselves",
        "iam:AttachUserPolicy",
        ME,
        {"iam:PolicyARN": ADMIN_POLICY},
    ),
    ("put an inline policy on themselves", "iam:PutUserPolicy", ME, {}),
    ("remove their own boundary", "iam:DeleteUserPermissionsBoundary", ME, {}),
    (
        "give themselves another boundary",
        "iam:PutUserPermissionsBoundary",
        ME,
        {"iam:PermissionsBoundary": ADMIN_POLICY},
    ),
    (
        "add themselves to another group",
        "iam:AddUserToGroup",
        f"{IAM}:group/admins",
        {},
    ),
    ("create a user", "iam:CreateUser", f"{IAM}:user/opsgate/mallory2", {}),
    (
        "edit the operators group's policy",
        "iam:CreatePolicyVersion",
        f"{IAM}:policy/opsgate/opsgate-EnforceMfa",
        {},
    ),
    (
        "attach a policy to the operators group",
        "iam:AttachGroupPolicy",
        f"{IAM}:group/opsgate/opsgate-operators",
        {"iam:PolicyARN": ADMIN_POLICY},
    ),
    ("edit the user boundary", "iam:CreatePolicyVersion", USER_BOUNDARY, {}),
    ("edit the role boundary", "iam:SetDefaultPolicyVersion", BOUNDARY, {}),
    (
        "edit an opsgate role's trust",
        "iam:UpdateAssumeRolePolicy",
        f"{IAM}:role/opsgate/payments-deploy",
        {},
    ),
    (
        "pass a role to a service",
        "iam:PassRole",
        f"{IAM}:role/opsgate/payments-deploy",
        {},
    ),
    (
        "assume a role outside role/opsgate/",
        "sts:AssumeRole",
        f"{IAM}:role/OrganizationAccountAccessRole",
        {},
    ),
    (
        "assume another account's admin role",
        "sts:AssumeRole",
        "arn:aws:iam::210987654321:role/admin",
        {},
    ),
    ("read S3", "s3:GetObject", "arn:aws:s3:::payroll/2026.csv", {}),
    (
        "launch an EC2 instance",
        "ec2:RunInstances",
        f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:instance/*",
        {},
    ),
    (
        "decrypt with KMS",
        "kms:Decrypt",
        f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/1",
        {},
    ),
    ("list the organization's accounts", "organizations:ListAccounts", "*", {}),
    (
        "open an SSM session without a role",
        "ssm:StartSession",
        f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:instance/i-1",
        {},
    ),
    (
        "tag themselves Project=payments",
        "iam:TagUser",
        ME,
        {"aws:TagKeys": ["Project"]},
    ),
    ("untag their ManagedBy tag", "iam:UntagUser", ME, {"aws:TagKeys": ["managedby"]}),
]
OPERATOR_NEVER_WITHOUT_MFA = [
    (
        "create their own access key before registering MFA",
        "iam:CreateAccessKey",
        ME,
        {},
    ),
    (
        "assume an opsgate role without MFA",
        "sts:AssumeRole",
        f"{IAM}:role/opsgate/payments-deploy",
        {},
    ),
]
OPERATOR_LEGIT = [
    (
        "register their own MFA device, before MFA",
        "iam:CreateVirtualMFADevice",
        f"{IAM}:mfa/mallory",
        False,
        {},
    ),
    ("enable it on their own user, before MFA", "iam:EnableMFADevice", ME, False, {}),
    ("change their own password, before MFA", "iam:ChangePassword", ME, False, {}),
    ("create their own access key", "iam:CreateAccessKey", ME, True, {}),
    ("read their own tags", "iam:ListUserTags", ME, True, {}),
    (
        "tag themselves with a key opsgate does not own",
        "iam:TagUser",
        ME,
        True,
        {"aws:TagKeys": ["team"]},
    ),
    (
        "assume an opsgate role",
        "sts:AssumeRole",
        f"{IAM}:role/opsgate/payments-deploy",
        True,
        {},
    ),
    (
        "assume an opsgate role in a roles account",
        "sts:AssumeRole",
        "arn:aws:iam::210987654321:role/opsgate/payments-deploy",
        True,
        {},
    ),
]


def operator_never_requests():
    return [
        (question, _operator(action, resource, **context))
        for question, action, resource, context in OPERATOR_NEVER
    ] + [
        (question, _operator(action, resource, mfa=False, **context))
        for question, action, resource, context in OPERATOR_NEVER_WITHOUT_MFA
    ]


def test_a_user_opsgate_creates_can_only_ever_carry_the_user_boundary():
    assert list(boundaries_a_new_user_can_get(service_policy())) == [
        "the user boundary"
    ]


@pytest.mark.parametrize(
    "request_",
    [r for _, r in operator_never_requests()],
    ids=[q for q, _ in operator_never_requests()],
)
def test_an_operator_in_a_group_rewritten_to_allow_everything_still_cannot(request_):
    """The chain of issue 15: opsgate's credentials rewrite the group to Allow
    * on *, create a user (with whatever boundary they may give it), a console
    password, and add it to the group; the user registers MFA and signs in."""
    ceilings = boundaries_a_new_user_can_get(service_policy())
    assert ceilings
    allowed = [
        label
        for label, ceiling in ceilings.items()
        if iam_sim.evaluate(request_, identity=[ALLOW_ALL], boundary=ceiling)
    ]
    assert allowed == []


def _real_group() -> list[dict]:
    return list(
        policies.group_policies(
            prefix="opsgate-", account_id=ACCOUNT_ID, path=P
        ).values()
    )


@pytest.mark.parametrize("group", ["as opsgate writes it", "rewritten to Allow *"])
@pytest.mark.parametrize(
    ("action", "resource", "mfa", "context"),
    [q[1:] for q in OPERATOR_LEGIT],
    ids=[q[0] for q in OPERATOR_LEGIT],
)
def test_an_operator_can_still_do_their_job(group, action, resource, mfa, context):
    identity = _real_group() if group == "as opsgate writes it" else [ALLOW_ALL]
    request_ = _operator(action, resource, mfa=mfa, **context)
    boundary = policies.user_boundary_policy(account_id=ACCOUNT_ID, path=P)
    assert iam_sim.evaluate(request_, identity=identity, boundary=boundary)


def test_the_boundary_allows_service_specific_credentials_of_their_own():
    boundary = policies.user_boundary_policy(account_id=ACCOUNT_ID, path=P)
    own = _operator("iam:CreateServiceSpecificCredential", ME)
    other = _operator(
        "iam:CreateServiceSpecificCredential", f"{IAM}:user/opsgate/alice"
    )
    assert iam_sim.evaluate(own, identity=[ALLOW_ALL], boundary=boundary)
    assert not iam_sim.evaluate(other, identity=[ALLOW_ALL], boundary=boundary)


def test_a_backdoor_policy_on_the_group_no_longer_escalates():
    """opsgate may still create a new opsgate-* policy and attach it to the
    group (the group is its to keep): an operator holding it gets no more
    than the boundary allows."""
    policy = service_policy()
    backdoor = f"{IAM}:policy/opsgate/opsgate-Backdoor"
    assert opsgate_may(
        policy,
        "iam",
        "CreatePolicy",
        {"PolicyName": "opsgate-Backdoor", "Path": P, "Tags": MANAGED},
    )
    assert opsgate_may(
        policy,
        "iam",
        "AttachGroupPolicy",
        {"GroupName": "opsgate-operators", "PolicyArn": backdoor},
    )
    boundary = policies.user_boundary_policy(account_id=ACCOUNT_ID, path=P)
    identity = [*_real_group(), ALLOW_ALL]
    for question, request_ in operator_never_requests():
        assert not iam_sim.evaluate(request_, identity=identity, boundary=boundary), (
            question
        )
    assume = _operator("sts:AssumeRole", f"{IAM}:role/opsgate/payments-deploy")
    assert iam_sim.evaluate(assume, identity=identity, boundary=boundary)


def test_without_a_boundary_the_same_operator_would_hold_the_account():
    """A positive control: with no ceiling (a user created by the policy before
    issue 15), the evaluator answers yes to every question above."""
    escalations = [
        question
        for question, request_ in operator_never_requests()
        if iam_sim.evaluate(request_, identity=[ALLOW_ALL], boundary=None)
    ]
    assert escalations == [question for question, _ in operator_never_requests()]

"""Several AWS accounts (issue 11, DESIGN §1.5): people in an identity
account, operation roles in workload accounts that trust its users, each
account reached through its provisioner role (moto: an sts:AssumeRole into a
role ARN of another account id returns credentials that act there)."""

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from django.core.exceptions import ValidationError

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    RequestStatus,
)
from accounts_app.services import access_requests, accounts, people, projects, roles
from provisioning import aws, boundaries, policies, reconcile, sync
from provisioning.models import DriftKind
from tests.conftest import ACCOUNT_ID
from tests.faults import injected, service_credentials_xml
from tests.test_accounts_admin import moto_reset

ROOT = Path(__file__).resolve().parent.parent
STAGING_ID, PROD_ID = "111111111111", "222222222222"
PATH = "/opsgate/"


def provisioner(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/opsgate-provisioner"


@pytest.fixture
def rows(db):
    """The accounts of `hub` as rows only (nothing in AWS): for the checks
    that never reach AWS."""
    return _accounts()


@pytest.fixture
def hub(aws_env, db):
    """The identity account (moto's default account, opsgate's own
    credentials) and two workload accounts reached through their roles."""
    people_account, staging, prod = _accounts()
    for account in (staging, prod):
        boundaries.apply(account=account)
    yield people_account, staging, prod
    moto_reset(aws_env)


def _accounts():
    people_account = AwsAccount.objects.create(
        account_id=ACCOUNT_ID, name="people", is_default=True, holds_roles=False
    )
    staging = accounts.account_add(
        actor=None,
        account_id=STAGING_ID,
        name="staging",
        holds_people=False,
        identity_account_id=ACCOUNT_ID,
        assume_role_arn=provisioner(STAGING_ID),
        external_id="opsgate-staging",
        regions=["us-east-1", "eu-west-1"],
    )
    prod = accounts.account_add(
        actor=None,
        account_id=PROD_ID,
        name="prod",
        holds_people=False,
        identity_account_id=ACCOUNT_ID,
        assume_role_arn=provisioner(PROD_ID),
        external_id="opsgate-prod",
    )
    return people_account, staging, prod


def person(account, name, staff=False):
    return people.person_add(
        actor=None,
        account=account,
        iam_user_name=name,
        email=f"{name}@example.com",
        is_staff=staff,
    )


@pytest.fixture
def world(hub):
    """payments has a role in staging and one in prod; bob approves it; carol
    and dave are people of the identity account."""
    people_account, staging, prod = hub
    bob, carol, dave = (person(people_account, n) for n in ("bob", "carol", "dave"))
    payments = projects.project_create(
        actor=None, name="payments", account=staging, approvers=[bob.user]
    )
    staging_role = roles.role_create(actor=None, project=payments, os_user="deploy")
    prod_role = roles.role_create(
        actor=None, project=payments, os_user="deploy", account=prod
    )
    return {
        "people": people_account,
        "staging": staging,
        "prod": prod,
        "bob": bob,
        "carol": carol,
        "dave": dave,
        "staging_role": staging_role,
        "prod_role": prod_role,
    }


def grant(role, requester, approver) -> AccessRequest:
    req = access_requests.access_request_create(
        requester=requester,
        role=role,
        reason="release",
        duration_hours=8,
        actor=requester.user,
    )
    access_requests.access_request_approve(access_request=req, approver=approver.user)
    return req


def iam_in(account: AwsAccount):
    return aws.client("iam", account)


def trust_principals(client, role_name: str) -> list[str]:
    document = client.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    principals = document["Statement"][0]["Principal"]["AWS"]
    return sorted([principals] if isinstance(principals, str) else principals)


def policy_names(client) -> set[str]:
    listed = client.list_policies(Scope="Local", PathPrefix=PATH)["Policies"]
    return {p["PolicyName"] for p in listed}


def group_names(client) -> set[str]:
    return {g["GroupName"] for g in client.list_groups()["Groups"]}


# --- Reaching each account ---------------------------------------------------


def test_opsgate_acts_in_each_account_through_its_provisioner_role(hub):
    people_account, staging, prod = hub
    assert aws.account_identity(people_account) == ACCOUNT_ID
    assert aws.account_identity(staging) == STAGING_ID
    assert aws.account_identity(prod) == PROD_ID


def test_baselines_follow_what_each_account_holds(world):
    for account in (world["people"], world["staging"], world["prod"]):
        sync.account_baseline_sync(account_id=account.pk)
    people_iam, staging_iam = iam_in(world["people"]), iam_in(world["staging"])
    assert group_names(people_iam) == {"opsgate-operators"}
    assert group_names(staging_iam) == set()
    people_policies, staging_policies = (
        policy_names(people_iam),
        policy_names(staging_iam),
    )
    assert "opsgate-SsmSessionManager" not in people_policies
    assert "opsgate-EnforceMfa" in people_policies
    assert "opsgate-SsmSessionManager" in staging_policies
    assert "opsgate-Ec2StartStop" in staging_policies
    assert "opsgate-EnforceMfa" not in staging_policies
    for account in (world["people"], world["staging"], world["prod"]):
        account.refresh_from_db()
        assert account.applied_version >= account.desired_version
        assert account.last_error == ""


# --- Cross-account trust -----------------------------------------------------


def test_a_workload_role_trusts_the_identity_accounts_user(world):
    carol, bob = world["carol"], world["bob"]
    grant(world["staging_role"], carol, bob)
    sync.role_sync(role_id=world["staging_role"].pk)
    staging_iam = iam_in(world["staging"])
    name = world["staging_role"].role_name
    role = staging_iam.get_role(RoleName=name)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{STAGING_ID}:role{PATH}{name}"
    carol_arn = f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}carol"
    document = role["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    assert document == policies.trust_policy([carol_arn])
    tags = {t["Key"]: t["Value"] for t in role["Tags"]}
    assert tags == {
        "Project": "payments",
        "SSMSessionRunAs": "deploy",
        "ManagedBy": "opsgate",
    }
    # carol has one IAM user, in the identity account only.
    assert (
        iam_in(world["people"]).get_user(UserName="carol")["User"]["Arn"] == carol_arn
    )
    with pytest.raises(ClientError):
        staging_iam.get_user(UserName="carol")
    # The prod role has no grant: it does not exist anywhere yet.
    with pytest.raises(ClientError):
        iam_in(world["prod"]).get_role(RoleName=world["prod_role"].role_name)


def test_a_project_has_roles_in_two_accounts_with_the_same_project_tag(world):
    grant(world["staging_role"], world["carol"], world["bob"])
    grant(world["prod_role"], world["carol"], world["bob"])
    for role in (world["staging_role"], world["prod_role"]):
        sync.role_sync(role_id=role.pk)
    for account, role in (
        (world["staging"], world["staging_role"]),
        (world["prod"], world["prod_role"]),
    ):
        got = iam_in(account).get_role(RoleName=role.role_name)["Role"]
        assert {t["Key"]: t["Value"] for t in got["Tags"]}["Project"] == "payments"
        assert trust_principals(iam_in(account), role.role_name) == [
            f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}carol"
        ]
    assert IamUser.objects.filter(name="carol").count() == 1


def test_the_last_revoke_deletes_the_workload_role_and_ends_sessions_in_each_region(
    world, ssm_sessions
):
    req = grant(world["staging_role"], world["carol"], world["bob"])
    role = world["staging_role"]
    sync.role_sync(role_id=role.pk)
    owner = f"arn:aws:sts::{STAGING_ID}:assumed-role/{role.role_name}/carol"
    ssm_sessions.sessions[owner] = ["carol-1"]
    access_requests.access_request_revoke(
        access_request=AccessRequest.objects.get(pk=req.pk),
        actor=world["bob"].user,
    )
    sync.role_sync(role_id=role.pk)
    with pytest.raises(ClientError) as gone:
        iam_in(world["staging"]).get_role(RoleName=role.role_name)
    assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    described = [p for op, p in ssm_sessions.calls if op == "DescribeSessions"]
    # One look per region of the staging account (us-east-1, eu-west-1).
    assert len(described) == 2
    assert {f["value"] for p in described for f in p["Filters"]} == {owner}
    assert ssm_sessions.sessions[owner] == []


def test_a_revoked_session_deny_names_the_workload_roles_id(world):
    req = grant(world["staging_role"], world["carol"], world["bob"])
    grant(world["staging_role"], world["dave"], world["bob"])
    role = world["staging_role"]
    sync.role_sync(role_id=role.pk)
    access_requests.access_request_revoke(
        access_request=AccessRequest.objects.get(pk=req.pk),
        actor=world["bob"].user,
    )
    sync.role_sync(role_id=role.pk)
    role.refresh_from_db()
    staging_iam = iam_in(world["staging"])
    document = staging_iam.get_role_policy(
        RoleName=role.role_name, PolicyName=sync.revoked_sessions_policy_name()
    )["PolicyDocument"]
    assert f"{role.unique_id}:carol" in json.dumps(document)
    assert trust_principals(staging_iam, role.role_name) == [
        f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}dave"
    ]


def test_capacity_is_computed_with_the_identity_accounts_arns(world, settings):
    from accounts_app import trust

    grant(world["staging_role"], world["carol"], world["bob"])
    used, quota = trust.trust_capacity(world["staging_role"])
    assert used == policies.trust_policy_size(
        [f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}carol"]
    )
    AwsAccount.objects.filter(pk=world["staging"].pk).update(trust_policy_quota=used)
    role = OperationRole.objects.get(pk=world["staging_role"].pk)
    req = access_requests.access_request_create(
        requester=world["dave"],
        role=role,
        reason="x",
        duration_hours=8,
        actor=world["dave"].user,
    )
    with pytest.raises(ValidationError, match="Role full"):
        access_requests.access_request_approve(
            access_request=req, approver=world["bob"].user
        )
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


def test_offboarding_rewrites_the_trusts_in_every_account(world):
    carol, dave, bob = world["carol"], world["dave"], world["bob"]
    grant(world["staging_role"], carol, bob)
    grant(world["prod_role"], carol, bob)
    grant(world["prod_role"], dave, bob)
    for pk in (world["staging_role"].pk, world["prod_role"].pk):
        sync.role_sync(role_id=pk)
    people.person_offboard(iam_user=carol, actor=bob.user)
    with injected(world["people"]) as faults:  # moto lacks these
        faults.answer(
            "ListServiceSpecificCredentials", service_credentials_xml("carol", [])
        )
        sync.iam_user_sync(iam_user_id=carol.pk)
    with pytest.raises(ClientError):
        iam_in(world["people"]).get_user(UserName="carol")
    with pytest.raises(ClientError):  # carol was its only principal
        iam_in(world["staging"]).get_role(RoleName=world["staging_role"].role_name)
    assert trust_principals(iam_in(world["prod"]), world["prod_role"].role_name) == [
        f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}dave"
    ]


def test_a_request_needs_an_iam_user_in_the_identity_account(world):
    elsewhere = accounts.account_add(
        actor=None,
        account_id="333333333333",
        name="sandbox",
        assume_role_arn=provisioner("333333333333"),
    )
    stranger = person(elsewhere, "zoe")
    with pytest.raises(ValidationError) as refused:
        access_requests.access_request_create(
            requester=stranger,
            role=world["staging_role"],
            reason="x",
            duration_hours=8,
            actor=stranger.user,
        )
    assert "trusts the IAM users of people (123456789012)" in str(refused.value)
    assert not AccessRequest.objects.filter(requester=stranger).exists()


def test_people_and_roles_go_only_where_the_account_holds_them(world):
    with pytest.raises(ValidationError, match="holds no people"):
        person(world["staging"], "mallory")
    payments = world["staging_role"].project
    with pytest.raises(ValidationError, match="holds no roles"):
        roles.role_create(
            actor=None, project=payments, os_user="app", account=world["people"]
        )
    assert not IamUser.objects.filter(name="mallory").exists()
    assert not OperationRole.objects.filter(os_user="app").exists()


# --- Reconcile per account ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [("AccessDenied", "not authorized"), ("Throttling", "Rate exceeded")],
)
def test_one_unreachable_account_is_reported_and_the_others_reconciled(
    world, monkeypatch, code, text
):
    grant(world["staging_role"], world["carol"], world["bob"])
    sync.role_sync(role_id=world["staging_role"].pk)
    real = aws.clients._session

    def session(account, region=""):
        if account is not None and account.account_id == PROD_ID:
            error = {"Error": {"Code": code, "Message": text}}
            raise aws.classify(ClientError(error, "AssumeRole"), "sts:AssumeRole")
        return real(account, region)

    monkeypatch.setattr(aws.clients, "_session", session)
    aws.reset_clients()
    summaries = {s["account"]: s for s in reconcile.reconcile_all()}
    prod = summaries["prod (222222222222)"]
    assert prod["unreachable"] is True
    assert prod["errors"] == [f"sts:AssumeRole failed: {code}: {text}"]
    assert "unreachable" not in summaries["staging (111111111111)"]
    assert "unreachable" not in summaries["people (123456789012)"]
    staging, prod_row = (
        AwsAccount.objects.get(pk=world["staging"].pk),
        AwsAccount.objects.get(pk=world["prod"].pk),
    )
    assert staging.last_reconciled_at is not None and staging.reach_error == ""
    assert prod_row.last_reconciled_at is None
    assert code in prod_row.reach_error


def test_the_periodic_reconcile_runs_one_task_per_account(world, monkeypatch):
    from provisioning import tasks

    sent = []
    monkeypatch.setattr(
        tasks, "_publish", lambda task, pk, **kw: sent.append((task.name, pk)) or True
    )
    result = tasks.reconcile_accounts.apply().get()
    pks = sorted(a.pk for a in (world["people"], world["staging"], world["prod"]))
    assert sorted(pk for _, pk in sent) == pks
    assert {name for name, _ in sent} == {"provisioning.tasks.reconcile_account"}
    assert sorted(r["account_id"] for r in result) == pks


def test_reconcile_of_a_workload_account_finds_a_trust_changed_behind_opsgates_back(
    world, quiet_zero
):
    grant(world["staging_role"], world["carol"], world["bob"])
    role = world["staging_role"]
    sync.role_sync(role_id=role.pk)
    staging_iam = iam_in(world["staging"])
    staging_iam.update_assume_role_policy(
        RoleName=role.role_name,
        PolicyDocument=json.dumps(
            policies.trust_policy([f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}dave"])
        ),
    )
    report = reconcile.reconcile_account(world["staging"])
    assert [(f.name, f.kind) for f in report.found] == [
        (role.role_name, DriftKind.TRUST_EDITED)
    ]
    assert trust_principals(staging_iam, role.role_name) == [
        f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}carol"
    ]
    # The roles-only account has no group, and that is no drift.
    assert not any(f.object_type == "group" for f in report.found)


# --- Account setup: bad input ------------------------------------------------

GOOD = {
    "account_id": "444444444444",
    "name": "data",
    "holds_people": False,
    "holds_roles": True,
    "identity_account_id": ACCOUNT_ID,
    "assume_role_arn": "arn:aws:iam::444444444444:role/opsgate-provisioner",
    "external_id": "ext-123",
    "regions": ["eu-west-1"],
}

BAD_ACCOUNTS = [
    ({"account_id": "12345"}, "account_id", "exactly 12 digits"),
    ({"account_id": "12345678901a"}, "account_id", "exactly 12 digits"),
    ({"account_id": STAGING_ID}, "account_id", "already in opsgate"),
    ({"name": ""}, "name", "1 to 100 characters"),
    ({"name": "Staging"}, "name", "already named"),
    ({"holds_roles": False}, "holds_roles", "people, roles or both"),
    ({"identity_account_id": "999999999999"}, "identity_account", "add the identity"),
    ({"identity_account_id": "99"}, "identity_account", "exactly 12 digits"),
    ({"identity_account_id": STAGING_ID}, "identity_account", "holds no people"),
    ({"identity_account_id": ""}, "identity_account", "roles-only account names"),
    (
        {"assume_role_arn": "arn:aws:iam::111111111111:role/opsgate-provisioner"},
        "assume_role_arn",
        "in account 111111111111, not 444444444444",
    ),
    (
        {"assume_role_arn": "arn:aws:iam::444444444444:user/opsgate"},
        "assume_role_arn",
        "Give an IAM role ARN",
    ),
    ({"assume_role_arn": "*"}, "assume_role_arn", "Give an IAM role ARN"),
    (
        {"assume_role_arn": "arn:aws-cn:iam::444444444444:role/x"},
        "assume_role_arn",
        "partition aws-cn",
    ),
    ({"assume_role_arn": ""}, "external_id", "goes with a provisioner role"),
    ({"external_id": "x"}, "external_id", "2 to 1,224 characters"),
    ({"external_id": "a b"}, "external_id", "2 to 1,224 characters"),
    ({"regions": ["eu-west-1", "Europe"]}, "regions", "not an AWS region"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_ACCOUNTS)
def test_account_add_refuses_bad_input(rows, change, field, message):
    before = (AwsAccount.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as refused:
        accounts.account_add(actor=None, **{**GOOD, **change})
    errors = refused.value.message_dict
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert (AwsAccount.objects.count(), AuditEvent.objects.count()) == before


def test_account_add_accepts_the_good_input(rows):
    account = accounts.account_add(actor=None, **GOOD)
    assert account.identity.account_id == ACCOUNT_ID
    assert account.session_regions == ["eu-west-1"]
    assert AuditEvent.objects.filter(action="account.add", object_id=str(account.pk))


def test_an_identity_account_cannot_itself_trust_another_one(rows):
    """A chain (or a cycle) of identity accounts is refused, whichever end is
    changed."""
    people_account, staging, _ = rows
    both = accounts.account_add(
        actor=None,
        account_id="555555555555",
        name="both",
        assume_role_arn=provisioner("555555555555"),
    )
    with pytest.raises(ValidationError) as refused:
        accounts.account_update(
            actor=None,
            account=people_account,
            identity_account_id="555555555555",
            holds_roles=True,
        )
    assert "trust the IAM users of this account" in str(refused.value)
    accounts.account_update(actor=None, account=both, identity_account_id=ACCOUNT_ID)
    with pytest.raises(ValidationError) as cycle:
        accounts.account_add(
            actor=None,
            account_id="666666666666",
            name="chained",
            identity_account_id="555555555555",
        )
    assert "no chains or cycles" in str(cycle.value)
    with pytest.raises(ValidationError, match="must hold people"):
        accounts.account_update(
            actor=None, account=people_account, holds_people=False, holds_roles=True
        )
    assert AwsAccount.objects.get(pk=people_account.pk).holds_people


# --- Provisioner role template -----------------------------------------------

TEMPLATE = ROOT / "deploy" / "cloudformation" / "opsgate-provisioner.json"


def test_the_provisioner_template_in_deploy_is_generated_from_the_service_policy():
    from provisioning.management.commands.opsgate_iam_policy import (
        provisioner_template_default,
    )

    assert json.loads(TEMPLATE.read_text()) == provisioner_template_default()


def test_the_provisioner_template_passes_cfn_lint():
    from cfnlint.api import lint

    assert [str(m) for m in lint(TEMPLATE.read_text())] == []
    broken = json.loads(TEMPLATE.read_text())
    broken["Resources"]["ProvisionerRole"]["Properties"]["MaxSessionDuration"] = 60
    assert lint(json.dumps(broken))


def test_the_provisioner_role_trusts_opsgate_only_with_the_external_id():
    template = json.loads(TEMPLATE.read_text())
    trust = template["Resources"]["ProvisionerRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": {"Ref": "OpsgatePrincipalArn"}},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
        }
    ]


# --- Real workers: reconcile in parallel, one account unreachable ------------


def test_a_role_arn_of_another_account_is_never_used_to_act_in_it(hub):
    """The Django admin skips the services' checks: an account whose role ARN
    names another account is refused at AssumeRole, not written into."""
    people_account, staging, _ = hub
    AwsAccount.objects.filter(pk=staging.pk).update(
        assume_role_arn=provisioner(PROD_ID)
    )
    staging.refresh_from_db()
    aws.reset_clients()
    with pytest.raises(aws.PermanentError) as refused:
        aws.account_identity(staging)
    assert refused.value.code == "WrongAccount"
    assert f"acts in account {PROD_ID}, not {STAGING_ID}" in refused.value.message


@pytest.mark.django_db(transaction=True)
def test_workers_reconcile_each_account_in_its_own_task_and_report_the_unreachable(
    aws_env,
):
    from provisioning import tasks
    from tests.workers import Worker, reset_broker, wait_for

    people_account, staging, prod = _accounts()
    broken = AwsAccount.objects.create(
        account_id="333333333333",
        name="broken",
        holds_people=False,
        identity_account=people_account,
        assume_role_arn=provisioner("444444444444"),  # typed wrong in the admin
    )
    reset_broker()
    env = {"OPSGATE_RECONCILE_REPAIR": "false"}
    workers = [Worker(f"acct{i}", concurrency=1, env=env) for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        tasks.reconcile_accounts.delay()
        everyone = [people_account, staging, prod, broken]

        def all_checked() -> bool:
            rows = AwsAccount.objects.filter(pk__in=[a.pk for a in everyone])
            return all(a.reach_checked_at for a in rows)

        assert wait_for(all_checked, timeout=240)
        logs = "".join(w.log() for w in workers)
    finally:
        for w in workers:
            w.kill()
        moto_reset(aws_env)
    rows = {a.name: a for a in AwsAccount.objects.all()}
    assert "WrongAccount" in rows["broken"].reach_error
    assert rows["broken"].last_reconciled_at is None
    for name in ("people", "staging", "prod"):
        assert rows[name].reach_error == ""
        assert rows[name].last_reconciled_at is not None
    # Each account was its own reconcile_account task.
    assert logs.count("provisioning.tasks.reconcile_account[") >= 4 * 2


# --- Connection kit across accounts ------------------------------------------


def test_the_connection_kit_uses_the_identity_accounts_profile_and_device():
    from accounts_app import instructions

    kit = instructions.connection(
        account_id=PROD_ID,
        partition="aws",
        path=PATH,
        role_name="checkout-deploy",
        role_arn=f"arn:aws:iam::{PROD_ID}:role/opsgate/checkout-deploy",
        iam_user_name="carol",
        display_name="checkout as deploy",
        region="eu-west-1",
        identity_account_id=ACCOUNT_ID,
    )
    assert kit.aws_config == "\n".join(
        [
            "[profile opsgate]",
            "# your own access keys: aws configure --profile opsgate "
            f"(IAM user carol in {ACCOUNT_ID})",
            "region = eu-west-1",
            "",
            f"[profile opsgate-checkout-deploy-{PROD_ID}]",
            f"role_arn = arn:aws:iam::{PROD_ID}:role/opsgate/checkout-deploy",
            f"mfa_serial = arn:aws:iam::{ACCOUNT_ID}:mfa/carol",
            "source_profile = opsgate",
            "role_session_name = carol",
            "region = eu-west-1",
        ]
    )
    assert kit.ssm_command.endswith(f"--profile opsgate-checkout-deploy-{PROD_ID}")
    assert f"account={PROD_ID}" in kit.switch_role_url
    assert "roleName=opsgate/checkout-deploy" in kit.switch_role_url


def test_a_grants_connection_points_at_the_workload_account(rows):
    from accounts_app import selectors

    people_account, staging, _ = rows
    carol = person(people_account, "carol")
    payments = projects.project_create(actor=None, name="payments", account=staging)
    role = roles.role_create(actor=None, project=payments, os_user="deploy")
    req = AccessRequest(requester=carol, role=role)
    kit = selectors.grant_connection(req)
    assert kit.role_arn == f"arn:aws:iam::{STAGING_ID}:role/opsgate/payments-deploy"
    assert f"mfa_serial = arn:aws:iam::{ACCOUNT_ID}:mfa/carol" in kit.aws_config
    # staging's first SSM region is the profile's region.
    assert kit.aws_config.endswith("region = eu-west-1")


def test_the_accounts_benchmark_runs_at_a_tiny_size(aws_env, account):
    """bench/reconcile_accounts.py at 2 accounts x 3 roles, so it never rots:
    the seeded world is in sync, and each account costs two reads."""
    from bench import reconcile_accounts

    try:
        seeded = reconcile_accounts.seed(2, 3, 4)
        figures = reconcile_accounts.serial(seeded, delay=0.01)
    finally:
        moto_reset(aws_env)
    assert figures["calls_per_account"] == "2-2"
    assert figures["findings"] == 0


def test_the_approvals_filter_offers_the_account_of_every_role(world, login):
    """payments belongs to staging, but one of its roles lives in prod: an
    approver can narrow the queue to prod."""
    from django.urls import reverse

    for who, role in (("carol", "staging_role"), ("dave", "prod_role")):
        access_requests.access_request_create(
            requester=world[who],
            role=world[role],
            reason="release",
            duration_hours=8,
            actor=world[who].user,
        )
    client = login(world["bob"])
    page = client.get(reverse("approvals"))
    offered = dict(page.context["filters"].fields["account"].choices)
    assert offered[world["prod"].pk] == "prod"
    assert offered[world["staging"].pk] == "staging"
    prod_only = client.get(reverse("approvals") + f"?account={world['prod'].pk}")
    assert [r.requester.name for r in prod_only.context["pending"]] == ["dave"]

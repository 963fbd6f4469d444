"""Several AWS accounts, the admin's side (issue 11): `manage.py account_add`,
`manage.py accounts_discover`, the import with --account, and the portal's
AWS accounts page, with their bad-input tables."""

import html
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
)
from accounts_app.services import accounts
from tests.conftest import ACCOUNT_ID

pytestmark = pytest.mark.django_db

STAGING_ID, PROD_ID = "111111111111", "222222222222"


@pytest.fixture
def people_account(db):
    return AwsAccount.objects.create(
        account_id=ACCOUNT_ID, name="people", is_default=True, holds_roles=False
    )


def add_workload(account_id: str, name: str) -> AwsAccount:
    return accounts.account_add(
        actor=None,
        account_id=account_id,
        name=name,
        holds_people=False,
        identity_account_id=ACCOUNT_ID,
        assume_role_arn=f"arn:aws:iam::{account_id}:role/opsgate-provisioner",
        external_id=f"opsgate-{name}",
    )


def state() -> tuple[int, int]:
    return AwsAccount.objects.count(), AuditEvent.objects.count()


# --- manage.py account_add ----------------------------------------------------


def test_account_add_adds_a_workload_account(people_account, capsys):
    call_command(
        "account_add",
        "--id",
        STAGING_ID,
        "--name",
        "staging",
        "--roles",
        "--identity-account",
        ACCOUNT_ID,
        "--role-arn",
        f"arn:aws:iam::{STAGING_ID}:role/opsgate-provisioner",
        "--external-id",
        "ext-1",
        "--regions",
        "us-east-1,eu-west-1",
    )
    staging = AwsAccount.objects.get(account_id=STAGING_ID)
    assert (staging.holds_people, staging.holds_roles) == (False, True)
    assert staging.identity == people_account
    assert staging.session_regions == ["eu-west-1", "us-east-1"]
    assert staging.external_id == "ext-1"
    event = AuditEvent.objects.get(action="account.add", object_id=str(staging.pk))
    assert event.actor_repr == "manage.py account_add"
    assert "holds roles, its roles trust the users of people" in capsys.readouterr().out


def test_account_add_without_kind_flags_holds_both(db):
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/opsgate-provisioner"
    call_command(
        "account_add", "--id", ACCOUNT_ID, "--name", "solo", "--role-arn", role
    )
    solo = AwsAccount.objects.get()
    assert (solo.holds_people, solo.holds_roles, solo.identity) == (True, True, solo)


def test_account_add_without_a_role_needs_opsgates_own_account_recorded(db):
    """Without a provisioner role opsgate would act with its own credentials:
    refused until `opsgate_setup` recorded the account they belong to (and
    then only for that account, which is already in opsgate)."""
    with pytest.raises(CommandError) as refused:
        call_command("account_add", "--id", ACCOUNT_ID, "--name", "solo")
    assert "--role-arn: opsgate's own credentials act only in their own" in str(
        refused.value
    )
    assert "opsgate_setup" in str(refused.value)
    assert not AwsAccount.objects.exists()


ROLE = "arn:aws:iam::{}:role/opsgate-provisioner"
BAD_COMMANDS = [
    (["--id", "12"], "--id: An AWS account id has exactly 12 digits"),
    (["--id", ACCOUNT_ID], f"--id: Account {ACCOUNT_ID} is already in opsgate"),
    (["--roles"], "--identity-account: A roles-only account names"),
    (
        ["--roles", "--identity-account", "999999999999"],
        "--identity-account: No account 999999999999 in opsgate",
    ),
    (["--role-arn", ROLE.format(PROD_ID)], "--role-arn: This role is in account"),
    (["--role-arn", "arn:aws:iam::111111111111:root"], "--role-arn: Give an IAM role"),
    (["--external-id", "abc"], "--external-id: An external id goes with"),
    (["--regions", "moon-1"], "--regions: 'moon-1' is not an AWS region"),
    (["--name", " "], "--name: Give the account a name"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMANDS)
def test_account_add_refuses_bad_input(people_account, args, message):
    argv = list(args)
    if "--id" not in argv:
        argv += ["--id", STAGING_ID]
    if "--name" not in argv:
        argv += ["--name", "staging"]
    before = state()
    with pytest.raises(CommandError) as refused:
        call_command("account_add", *argv)
    assert message in str(refused.value)
    assert state() == before


# --- manage.py import_operation_users --account ---------------------------


def stack_file(tmp_path, name: str, users: list[str], roles: list[dict]):
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "users": [
                    {"userName": u, "emailAddress": f"{u}@example.com"} for u in users
                ],
                "roles": roles,
            }
        )
    )
    return str(path)


def test_importing_two_accounts_stacks_makes_one_person_and_one_project(
    people_account, tmp_path
):
    staging, prod = add_workload(STAGING_ID, "staging"), add_workload(PROD_ID, "prod")
    role = {"projectName": "payments", "ssmSessionRunAs": "deploy"}
    call_command(
        "import_operation_users",
        stack_file(
            tmp_path,
            "staging",
            ["carol", "dave"],
            [{**role, "rolePrincipalUserNames": ["carol", "dave"]}],
        ),
        "--account",
        STAGING_ID,
    )
    call_command(
        "import_operation_users",
        stack_file(
            tmp_path, "prod", ["carol"], [{**role, "rolePrincipalUserNames": ["carol"]}]
        ),
        "--account",
        PROD_ID,
    )
    carol = IamUser.objects.get(name="carol")  # one person, in the identity account
    assert carol.account == people_account
    assert IamUser.objects.filter(account__in=[staging, prod]).count() == 0
    payments = Project.objects.get(name="payments")
    assert sorted(r.account.name for r in payments.roles.all()) == ["prod", "staging"]
    granted = AccessRequest.objects.filter(requester=carol)
    assert sorted(g.role.account.name for g in granted) == ["prod", "staging"]
    assert OperationRole.objects.get(account=prod).role_name == "payments-deploy"


@pytest.mark.parametrize(
    ("account", "message"),
    [
        ("12345", "--account: An AWS account id has exactly 12 digits"),
        ("999999999999", "--account: no account 999999999999 in opsgate"),
    ],
)
def test_import_refuses_a_bad_account(people_account, tmp_path, account, message):
    before = (state(), IamUser.objects.count())
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_operation_users",
            stack_file(tmp_path, "x", ["carol"], []),
            "--account",
            account,
        )
    assert message in str(refused.value)
    assert (state(), IamUser.objects.count()) == before


def test_import_into_a_people_only_account_is_refused(people_account, tmp_path):
    with pytest.raises(CommandError):
        call_command(
            "import_operation_users",
            stack_file(tmp_path, "x", ["carol"], []),
            "--account",
            ACCOUNT_ID,
        )
    assert not IamUser.objects.exists()


# --- manage.py accounts_discover (moto's Organizations) ---------------------


@pytest.fixture
def organization(aws_env, people_account):
    import boto3

    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="workloads")
    ou_id = ou["OrganizationalUnit"]["Id"]
    created = {}
    for name in ("staging", "prod", "sandbox"):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        created[name] = status["CreateAccountStatus"]["AccountId"]
    for name in ("staging", "prod"):
        org.move_account(
            AccountId=created[name], SourceParentId=root, DestinationParentId=ou_id
        )
    yield {"ou": ou_id, **created}
    moto_reset(aws_env)


def moto_reset(url: str) -> None:
    """moto's reset takes long after several accounts were used (each loads
    the AWS-managed policies): done here with time to spare, so the next
    test's quick reset does not time out."""
    import urllib.request

    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=180).read()


def test_discover_lists_the_organizations_accounts(organization, capsys):
    call_command("accounts_discover")
    out = capsys.readouterr().out
    for name in ("staging", "prod", "sandbox"):
        assert organization[name] in out
    assert f"{ACCOUNT_ID}" in out and "managed as people" in out


def test_discover_filters_by_ou_and_enables_accounts(organization, capsys):
    staging_id = organization["staging"]
    call_command(
        "accounts_discover",
        "--ou",
        organization["ou"],
        "--enable",
        staging_id,
        "--roles",
        "--identity-account",
        ACCOUNT_ID,
        "--role-name",
        "opsgate-provisioner",
        "--external-id",
        "ext-staging",
    )
    out = capsys.readouterr().out
    assert organization["sandbox"] not in out
    assert organization["prod"] in out
    staging = AwsAccount.objects.get(account_id=staging_id)
    assert staging.name == "staging"
    assert staging.assume_role_arn == (
        f"arn:aws:iam::{staging_id}:role/opsgate-provisioner"
    )
    assert staging.identity.account_id == ACCOUNT_ID


def test_discover_refuses_an_account_not_listed(organization):
    before = state()
    with pytest.raises(CommandError, match="not among the accounts listed"):
        call_command(
            "accounts_discover", "--ou", organization["ou"], "--enable", "999999999999"
        )
    assert state() == before


def test_discover_reports_the_aws_error(organization):
    with pytest.raises(CommandError, match="ParentNotFoundException|not found"):
        call_command("accounts_discover", "--ou", "ou-zzzz-zzzzzzzz")


# --- The portal's AWS accounts page ------------------------------------------


@pytest.fixture
def admin(people_account):
    from accounts_app.services import people

    person = people.person_add(
        actor=None,
        account=people_account,
        iam_user_name="alice",
        email="alice@example.com",
        is_staff=True,
    )
    person.user.is_superuser = True
    person.user.save()
    return person


GOOD_FORM = {
    "account_id": STAGING_ID,
    "name": "staging",
    "holds_roles": "on",
    "identity_account": ACCOUNT_ID,
    "assume_role_arn": f"arn:aws:iam::{STAGING_ID}:role/opsgate-provisioner",
    "external_id": "ext-1",
    "regions": "eu-west-1",
}

BAD_FORMS = [
    ({"account_id": "abc"}, "exactly 12 digits"),
    ({"holds_roles": ""}, "An account holds people, roles or both."),
    ({"identity_account": ""}, "A roles-only account names the identity account"),
    ({"identity_account": "999999999999"}, "No account 999999999999 in opsgate"),
    (
        {"assume_role_arn": f"arn:aws:iam::{PROD_ID}:role/opsgate-provisioner"},
        f"This role is in account {PROD_ID}, not {STAGING_ID}",
    ),
    ({"external_id": "a b"}, "An external id has 2 to 1,224 characters"),
    ({"regions": "eu-west-1,Paris"}, "'Paris' is not an AWS region"),
    ({"name": "People"}, "An account is already named People."),
]


@pytest.mark.parametrize(("change", "message"), BAD_FORMS)
def test_the_accounts_page_refuses_bad_input(admin, login, change, message):
    before = state()
    data = {k: v for k, v in {**GOOD_FORM, **change}.items() if v != ""}
    page = login(admin).post(reverse("aws_accounts"), data)
    assert page.status_code == 200
    assert message in html.unescape(page.content.decode())
    assert state() == before


def test_the_accounts_page_adds_an_account_and_lists_it(admin, login):
    client = login(admin)
    page = client.post(reverse("aws_accounts"), GOOD_FORM, follow=True)
    staging = AwsAccount.objects.get(account_id=STAGING_ID)
    assert staging.identity.account_id == ACCOUNT_ID
    assert staging.regions == ["eu-west-1"]
    text = html.unescape(page.content.decode())
    assert f"Added staging ({STAGING_ID})" in text
    assert "not checked" in text
    assert AuditEvent.objects.filter(action="account.add", actor=admin.user).exists()


@pytest.fixture
def slow_reset(aws_env):
    yield
    moto_reset(aws_env)


def test_check_access_shows_the_reachability_and_the_aws_error(
    aws_env, slow_reset, admin, login, monkeypatch
):
    from botocore.exceptions import ClientError

    from provisioning import aws

    staging = add_workload(STAGING_ID, "staging")
    prod = add_workload(PROD_ID, "prod")
    client = login(admin)
    page = client.post(reverse("aws_account_check", args=[staging.pk]), follow=True)
    assert f"opsgate reaches staging ({STAGING_ID})" in page.content.decode()
    real = aws.clients._session

    def session(account, region=""):
        if account is not None and account.account_id == PROD_ID:
            error = {"Error": {"Code": "AccessDenied", "Message": "no trust"}}
            raise aws.classify(ClientError(error, "AssumeRole"), "sts:AssumeRole")
        return real(account, region)

    monkeypatch.setattr(aws.clients, "_session", session)
    page = client.post(reverse("aws_account_check", args=[prod.pk]), follow=True)
    text = html.unescape(page.content.decode())
    assert "sts:AssumeRole failed: AccessDenied: no trust" in text
    assert "unreachable" in text
    prod.refresh_from_db()
    staging.refresh_from_db()
    assert prod.reach_error == "sts:AssumeRole failed: AccessDenied: no trust"
    assert staging.reach_error == "" and staging.reach_checked_at is not None


def test_the_discovery_page_lists_accounts_with_enable_links(
    organization, admin, login
):
    page = login(admin).get(
        reverse("aws_accounts_discover"), {"ou": organization["ou"]}
    )
    text = html.unescape(page.content.decode())
    assert organization["staging"] in text and organization["prod"] in text
    assert organization["sandbox"] not in text
    assert f"account_id={organization['staging']}&name=staging" in text


def test_the_accounts_pages_are_for_admins_only(people_account, login):
    from accounts_app.services import people

    carol = people.person_add(actor=None, account=people_account, iam_user_name="carol")
    client = login(carol)
    assert client.get(reverse("aws_accounts")).status_code == 403
    assert client.get(reverse("aws_accounts_discover")).status_code == 403
    assert client.post(reverse("aws_accounts"), GOOD_FORM).status_code == 403
    assert not AwsAccount.objects.filter(account_id=STAGING_ID).exists()


# --- the portal's edit page ------------------------------------------------------

EDIT_FORM = {k: v for k, v in GOOD_FORM.items() if k != "account_id"}


def _snapshot(account: AwsAccount) -> tuple:
    account.refresh_from_db()
    return (
        account.name,
        account.holds_people,
        account.holds_roles,
        account.identity_account_id,
        account.assume_role_arn,
        account.external_id,
        account.regions,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [c for c in BAD_FORMS if "account_id" not in c[0]],
)
def test_the_edit_page_refuses_bad_input_and_changes_nothing(
    admin, login, change, message
):
    staging = add_workload(STAGING_ID, "staging")
    before, audit = _snapshot(staging), AuditEvent.objects.count()
    data = {k: v for k, v in {**EDIT_FORM, **change}.items() if v != ""}
    page = login(admin).post(reverse("aws_account_edit", args=[staging.pk]), data)
    assert page.status_code == 200
    assert message in html.unescape(page.content.decode())
    assert _snapshot(staging) == before
    assert AuditEvent.objects.count() == audit


def test_the_edit_page_saves_the_account_audits_it_and_keeps_its_id(admin, login):
    staging = add_workload(STAGING_ID, "staging")
    version = staging.desired_version
    client = login(admin)
    form = client.get(reverse("aws_account_edit", args=[staging.pk]))
    assert form.context["form"].initial["identity_account"] == ACCOUNT_ID
    data = {
        **EDIT_FORM,
        "account_id": PROD_ID,  # disabled field: ignored
        "name": "staging-eu",
        "external_id": "ext-2",
        "regions": "eu-west-1, eu-central-1",
    }
    page = client.post(
        reverse("aws_account_edit", args=[staging.pk]), data, follow=True
    )
    assert "Saved staging-eu" in html.unescape(page.content.decode())
    staging.refresh_from_db()
    assert staging.account_id == STAGING_ID
    assert (staging.name, staging.external_id) == ("staging-eu", "ext-2")
    assert staging.regions == ["eu-central-1", "eu-west-1"]
    assert staging.desired_version > version  # the worker converges it
    (row,) = AuditEvent.objects.filter(action="account.update", actor=admin.user)
    assert row.before["external_id"] == "opsgate-staging"
    assert row.after["external_id"] == "ext-2"

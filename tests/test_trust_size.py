"""Cross-account principals count against the trust-policy size (issue 9
item 5): a role is created or edited through the portal form, the Django admin
or the import only if its whole trust policy (grant holders and cross-account
users) fits AssumeRolePolicySizeQuota. Exactly at the quota is accepted; one
character over is refused with the approvals' "N of M characters" message,
and nothing reaches the database or AWS."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts_app import trust as trust_rules
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
)
from accounts_app.services import access_requests
from provisioning import aws, policies

pytestmark = pytest.mark.django_db


def arn(i: int, pad: int = 0) -> str:
    return f"arn:aws:iam::111122223333:user/ops/x{i:04}{'n' * pad}"


def arns_of_trust_size(size: int, holders: list[str] = ()) -> list[str]:
    """Cross-account ARNs that make the trust policy, with the `holders`'
    ARNs, exactly `size` characters (the last one's name is padded)."""
    arns: list[str] = []

    def total(extra):
        return policies.trust_policy_size([*holders, *arns, *extra])

    while total([arn(len(arns)), arn(len(arns) + 1)]) <= size:
        arns.append(arn(len(arns)))
    gap = size - total([arn(len(arns))])
    assert 0 <= gap <= 59, gap
    arns.append(arn(len(arns), pad=gap))
    assert total([]) == size
    return arns


@pytest.fixture
def quota(account) -> int:
    return account.trust_quota


def state():
    return (
        sorted(OperationRole.objects.values_list("pk", "extra_principal_arns")),
        list(OperationRole.objects.values_list("desired_version", flat=True)),
        AuditEvent.objects.count(),
    )


def full_message(role_name: str, used: int, quota: int) -> str:
    return (
        f"Role full: {role_name}'s trust policy would need {used} of {quota} "
        "characters."
    )


# --- The portal's "add a role" form -------------------------------------------


@pytest.mark.parametrize("over", [0, 1])
def test_adding_a_role_checks_its_cross_account_users_against_the_quota(
    aws_env,
    iam,
    login,
    alice,
    payments,
    quota,
    provisioning_runs,
    django_capture_on_commit_callbacks,
    over,
):
    arns = arns_of_trust_size(quota + over)
    before = state()
    with aws.observe_calls() as calls, django_capture_on_commit_callbacks(execute=True):
        response = login(alice).post(
            reverse("project_detail", args=[payments.pk]),
            {"os_user": "deploy", "extra_principal_arns": "\n".join(arns)},
        )
    writes = [c for c in calls if aws.is_write(c)]
    if over:
        assert response.status_code == 200
        assert response.context["form"].errors["extra_principal_arns"] == [
            full_message("payments-deploy", quota + 1, quota)
            + " List fewer cross-account users, split the role, or ask AWS to "
            "raise AssumeRolePolicySizeQuota."
        ]
        assert state() == before
        assert writes == []
    else:
        assert response.status_code == 302
        role = OperationRole.objects.get(project=payments, os_user="deploy")
        assert role.extra_principal_arns == sorted(arns)
        document = iam.get_role(RoleName="payments-deploy")["Role"]
        assert document["AssumeRolePolicyDocument"] == policies.trust_policy(arns)
        assert "iam:CreateRole" in writes


def test_a_list_of_ten_thousand_arns_is_refused_by_its_length(login, alice, payments):
    arns = "\n".join(arn(i) for i in range(10_000))
    before = state()
    response = login(alice).post(
        reverse("project_detail", args=[payments.pk]),
        {"os_user": "deploy", "extra_principal_arns": arns},
    )
    assert response.context["form"].errors["extra_principal_arns"] == [
        f"At most 20,000 characters of ARNs (this list has {len(arns):,}): a "
        "trust policy holds far fewer."
    ]
    assert state() == before


# --- The Django admin's role edit ---------------------------------------------


@pytest.fixture
def held_role(deploy_role, carol, bob):
    """payments-deploy with carol's grant in its trust."""
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="r",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    return OperationRole.objects.get(pk=deploy_role.pk)


def admin_post(client, role, arns):
    return client.post(
        reverse("admin:accounts_app_operationrole_change", args=[role.pk]),
        {
            "project": role.project_id,
            "account": role.account_id,
            "os_user": role.os_user,
            "role_name": role.role_name,
            "extra_principal_arns": json.dumps(arns),
            "revoked_sessions_until_0": "",
            "revoked_sessions_until_1": "",
            "_save": "Save",
        },
    )


@pytest.mark.parametrize("over", [0, 1])
def test_editing_a_role_in_the_admin_counts_its_grant_holders(
    login, alice, held_role, quota, over, django_capture_on_commit_callbacks
):
    holders = trust_rules.role_principals(held_role)
    assert len(holders) == 1  # carol
    arns = arns_of_trust_size(quota + over, holders)
    before = state()
    with aws.observe_calls() as calls, django_capture_on_commit_callbacks() as sent:
        response = admin_post(login(alice), held_role, arns)
    assert [c for c in calls if aws.is_write(c)] == []
    role = OperationRole.objects.get(pk=held_role.pk)
    if over:
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors["extra_principal_arns"]
        assert errors == [
            full_message("payments-deploy", quota + 1, quota)
            + " List fewer cross-account users, split the role, or ask AWS to "
            "raise AssumeRolePolicySizeQuota."
        ]
        assert state() == before and sent == []
    else:
        assert response.status_code == 302
        assert role.extra_principal_arns == sorted(arns)
        assert role.desired_version == held_role.desired_version + 1
        event = AuditEvent.objects.get(action="role.principals")
        assert event.after == {"extra_principal_arns": sorted(arns)}
        assert len(sent) == 1  # the role's sync, after commit


def test_the_admin_refuses_arns_that_are_not_iam_users(login, alice, held_role):
    before = state()
    response = admin_post(login(alice), held_role, ["arn:aws:iam::1:root"])
    errors = response.context["adminform"].form.errors["extra_principal_arns"]
    assert "Give an IAM user ARN such as" in errors[0]
    assert state() == before


# --- The import of the stack's parameter file ---------------------------------


def counts():
    models = (IamUser, Project, AccessRequest)
    return state(), [m.objects.count() for m in models]


def import_file(tmp_path, data) -> None:
    path = tmp_path / "operation-users.json"
    path.write_text(json.dumps(data))
    call_command("import_operation_users", str(path))


@pytest.mark.parametrize("over", [0, 1])
def test_import_checks_the_trust_with_earlier_grants_and_the_file(
    account, tmp_path, capsys, quota, over
):
    entry = {
        "projectName": "payments",
        "ssmSessionRunAs": "deploy",
        "rolePrincipalUserNames": ["carol"],
    }
    import_file(tmp_path, {"users": [{"userName": "carol"}], "roles": [entry]})
    role = OperationRole.objects.get()
    holders = trust_rules.role_principals(role)
    # The second file adds dave's grant and cross-account users.
    dave = policies.user_arn(
        account_id=account.account_id, path="/opsgate/", name="dave"
    )
    arns = arns_of_trust_size(quota + over, [*holders, dave])
    second = {
        "users": [{"userName": "dave"}],
        "roles": [
            {**entry, "rolePrincipalUserNames": ["dave"], "rolePrincipalUserArns": arns}
        ],
    }
    before = counts()
    with aws.observe_calls() as calls:
        if over:
            with pytest.raises(CommandError, match="nothing was imported"):
                import_file(tmp_path, second)
        else:
            import_file(tmp_path, second)
    assert [c for c in calls if aws.is_write(c)] == []
    if over:
        errors = capsys.readouterr().err
        assert "roles[0]: " + full_message(role.role_name, quota + 1, quota) in errors
        assert counts() == before
        assert not OperationRole.objects.get().extra_principal_arns
    else:
        role.refresh_from_db()
        assert role.extra_principal_arns == sorted(arns)
        assert trust_rules.trust_capacity(role) == (quota, quota)


@pytest.mark.parametrize("over", [0, 1])
def test_adding_a_role_in_the_admin_checks_the_quota(
    login, alice, payments, quota, over, django_capture_on_commit_callbacks
):
    arns = arns_of_trust_size(quota + over)
    before = state()
    with aws.observe_calls() as calls, django_capture_on_commit_callbacks() as sent:
        response = login(alice).post(
            reverse("admin:accounts_app_operationrole_add"),
            {
                "project": payments.pk,
                "account": payments.account_id,
                "os_user": "deploy",
                "role_name": "payments-deploy",
                "extra_principal_arns": json.dumps(arns),
                "revoked_sessions_until_0": "",
                "revoked_sessions_until_1": "",
                "_save": "Save",
            },
        )
    assert [c for c in calls if aws.is_write(c)] == []
    if over:
        errors = response.context["adminform"].form.errors["extra_principal_arns"]
        assert errors[0].startswith(full_message("payments-deploy", quota + 1, quota))
        assert state() == before and sent == []
    else:
        assert response.status_code == 302
        role = OperationRole.objects.get(role_name="payments-deploy")
        assert role.extra_principal_arns == sorted(arns)
        assert len(sent) == 1

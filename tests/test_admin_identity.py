"""No path edits a role's AWS identity in place (DESIGN §4.1, issue 20 item
8): the Django admin shows a role's name, account, project and OS user (and
what names its people, projects and accounts in AWS) read-only once created,
and what stays editable goes through the services (version bump, audit row)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts_app.models import AuditEvent, AwsAccount, IamUser, OperationRole
from accounts_app.services import projects
from provisioning import aws
from tests.helpers import ACCOUNT_ID

pytestmark = pytest.mark.django_db

CROSS = "arn:aws:iam::210987654321:user/partner"


@pytest.fixture
def elsewhere(db, account, alice):
    """Another account holding roles and another project: where a move would go."""
    other = AwsAccount.objects.create(account_id="210987654321", name="staging")
    project = projects.project_create(actor=alice.user, name="billing", account=other)
    return other, project


def role_post(client, role, **changes):
    data = {
        "project": role.project_id,
        "account": role.account_id,
        "os_user": role.os_user,
        "role_name": role.role_name,
        "extra_principal_arns": json.dumps(role.extra_principal_arns),
        "_save": "Save",
    }
    data.update(changes)
    return client.post(
        reverse("admin:accounts_app_operationrole_change", args=[role.pk]), data
    )


def identity(role: OperationRole) -> tuple:
    role = OperationRole.objects.get(pk=role.pk)
    return (role.role_name, role.account_id, role.project_id, role.os_user)


def test_the_admin_cannot_rename_or_move_a_role(login, alice, deploy_role, elsewhere):
    other_account, other_project = elsewhere
    before = identity(deploy_role)
    version = deploy_role.desired_version
    audits = AuditEvent.objects.count()

    client = login(alice)
    page = client.get(
        reverse("admin:accounts_app_operationrole_change", args=[deploy_role.pk])
    )
    form_fields = set(page.context["adminform"].form.fields)
    assert form_fields == {"extra_principal_arns"}
    with aws.observe_calls() as calls:
        response = role_post(
            client,
            deploy_role,
            role_name="renamed",
            account=other_account.pk,
            project=other_project.pk,
            os_user="root2",
        )

    assert response.status_code == 302
    assert identity(deploy_role) == before
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert role.desired_version == version
    assert AuditEvent.objects.count() == audits
    assert calls == []


def test_the_roles_editable_field_bumps_the_version_and_writes_an_audit_row(
    login, alice, deploy_role
):
    version = deploy_role.desired_version

    response = role_post(
        login(alice), deploy_role, extra_principal_arns=json.dumps([CROSS])
    )

    assert response.status_code == 302
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert role.extra_principal_arns == [CROSS]
    assert role.desired_version == version + 1
    event = AuditEvent.objects.get(action="role.principals")
    assert event.actor == alice.user
    assert event.after == {"extra_principal_arns": [CROSS]}


def test_a_role_is_still_added_in_the_admin_with_its_name_and_account(
    login, alice, payments
):
    page = login(alice).get(reverse("admin:accounts_app_operationrole_add"))
    assert {"project", "account", "os_user", "role_name"} <= set(
        page.context["adminform"].form.fields
    )


def test_the_admin_cannot_rename_a_project_or_move_it_to_another_account(
    login, alice, payments, elsewhere
):
    other_account, _ = elsewhere
    client = login(alice)
    url = reverse("admin:accounts_app_project_change", args=[payments.pk])
    fields = set(client.get(url).context["adminform"].form.fields)
    assert "name" not in fields and "account" not in fields
    client.post(
        url,
        {
            "name": "renamed",
            "account": other_account.pk,
            "description": "",
            "allowed_durations": json.dumps(payments.allowed_durations),
            "_save": "Save",
        },
    )
    payments.refresh_from_db()
    assert (payments.name, payments.account.account_id) == ("payments", ACCOUNT_ID)


def test_the_admin_cannot_change_an_accounts_id_or_partition(login, alice, account):
    url = reverse("admin:accounts_app_awsaccount_change", args=[account.pk])
    fields = set(login(alice).get(url).context["adminform"].form.fields)
    assert "account_id" not in fields and "partition" not in fields


def test_the_admin_cannot_rename_move_or_reactivate_an_iam_user(login, alice, carol):
    client = login(alice)
    url = reverse("admin:accounts_app_iamuser_change", args=[carol.pk])
    fields = set(client.get(url).context["adminform"].form.fields)
    assert fields == {"email"}


def test_an_iam_users_email_changed_in_the_admin_is_audited_and_synced(
    login, alice, carol
):
    version = carol.desired_version
    client = login(alice)
    url = reverse("admin:accounts_app_iamuser_change", args=[carol.pk])

    response = client.post(url, {"email": "carol@new.example.com", "_save": "Save"})

    assert response.status_code == 302
    carol = IamUser.objects.get(pk=carol.pk)
    assert carol.email == "carol@new.example.com"
    assert carol.desired_version == version + 1
    event = AuditEvent.objects.get(action="person.email")
    assert event.before == {"email": "carol@example.com"}
    assert event.after == {"email": "carol@new.example.com"}


def test_an_import_naming_another_role_name_for_an_existing_role_renames_nothing(
    deploy_role, account
):
    from accounts_app import importer

    before = identity(deploy_role)
    data = {
        "users": [],
        "roles": [
            {
                "roleName": "payments-deploy-renamed",
                "rolePrincipalUserNames": [],
                "projectName": "payments",
                "ssmSessionRunAs": "deploy",
            }
        ],
    }

    result = importer.apply(data, account=account, path="/opsgate/")

    assert result.errors == [
        "payments / deploy already has the role payments-deploy, "
        "not payments-deploy-renamed"
    ]
    assert identity(deploy_role) == before
    assert not OperationRole.objects.filter(role_name__contains="renamed").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"role_name": "renamed"},
        {"os_user": "root2"},
        {"account": "other"},
        {"project": "other"},
    ],
)
def test_no_code_path_saves_a_role_with_another_identity(
    deploy_role, elsewhere, change
):
    other_account, other_project = elsewhere
    role = OperationRole.objects.get(pk=deploy_role.pk)
    before = identity(role)
    for field, value in change.items():
        if value == "other":
            value = {"account": other_account, "project": other_project}[field]
        setattr(role, field, value)
    with pytest.raises(ValidationError, match="never change"):
        role.save()
    with pytest.raises(ValidationError, match="never change"):
        role.save(update_fields=[next(iter(change))])
    assert identity(role) == before
    role.refresh_from_db()
    role.extra_principal_arns = [CROSS]
    role.save()  # anything else saves as before

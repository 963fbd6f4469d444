"""Offboarding: every grant ends, the roles that trusted the person are
rewritten, and the IAM user is deleted after everything that blocks
DeleteUser, in the order IAM needs. Adding the person again starts clean."""

import json

import pytest
from django.core.exceptions import ValidationError

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from accounts_app.services import access_requests, people
from accounts_app.services import roles as role_services
from provisioning import aws, sync
from provisioning.moto_ext import enable_virtual_mfa
from tests.conftest import ACCOUNT_ID
from tests.faults import injected, service_credentials_xml
from tests.helpers import grant

pytestmark = pytest.mark.django_db

DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    ],
}


@pytest.fixture
def no_service_credentials(account):
    """moto does not implement service-specific credentials: answer like IAM
    does for a user that has none."""
    with injected(account) as faults:
        faults.answer(
            "ListServiceSpecificCredentials", service_credentials_xml("x", [])
        )
        yield faults


@pytest.fixture
def carol_everywhere(aws_env, iam, account, carol, dave, bob, deploy_role):
    """carol with access keys, a console password, an enabled virtual MFA
    device, a signing certificate, an SSH key, an inline and an attached
    policy, group membership and a grant beside dave's."""
    grant(carol, deploy_role, bob)
    grant(dave, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    iam.create_access_key(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Pa55word!x")
    enable_virtual_mfa(iam, "carol")
    iam.upload_signing_certificate(UserName="carol", CertificateBody=CERT)
    iam.upload_ssh_public_key(UserName="carol", SSHPublicKeyBody=SSH_KEY)
    iam.put_user_policy(
        UserName="carol", PolicyName="own", PolicyDocument=json.dumps(DOC)
    )
    arn = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(DOC))[
        "Policy"
    ]["Arn"]
    iam.attach_user_policy(UserName="carol", PolicyArn=arn)
    return carol


def test_offboarding_revokes_grants_cancels_requests_and_disables_the_login(
    carol, bob, alice, deploy_role, payments
):
    g = grant(carol, deploy_role, bob)
    other = role_services.role_create(actor=alice.user, project=payments, os_user="ops")
    pending = access_requests.access_request_create(
        requester=carol, role=other, reason="x", duration_hours=8, actor=carol.user
    )
    version = OperationRole.objects.get(pk=deploy_role.pk).desired_version

    people.person_offboard(iam_user=carol, actor=alice.user, reason="left")

    carol.refresh_from_db()
    g.refresh_from_db()
    pending.refresh_from_db()
    assert carol.state == IamUserState.REMOVED
    assert not carol.user.is_active
    assert g.status == RequestStatus.REVOKED
    assert pending.status == RequestStatus.CANCELLED
    assert OperationRole.objects.get(pk=deploy_role.pk).desired_version == version + 1
    assert not AccessRequest.active_grants().filter(requester=carol).exists()
    assert sorted(
        AuditEvent.objects.filter(actor=alice.user)
        .filter(action__in=["request.revoke", "request.cancel", "person.offboard"])
        .values_list("action", flat=True)
    ) == ["person.offboard", "request.cancel", "request.revoke"]
    with pytest.raises(ValidationError, match="already offboarded"):
        people.person_offboard(iam_user=carol, actor=alice.user)
    with pytest.raises(ValidationError, match="offboarded"):
        access_requests.access_request_create(
            requester=carol,
            role=other,
            reason="x",
            duration_hours=8,
            actor=carol.user,
        )


def test_the_worker_disables_the_user_then_rewrites_the_trust_then_deletes_it(
    carol_everywhere, iam, alice, no_service_credentials
):
    carol = carol_everywhere
    no_service_credentials.answer(
        "ListServiceSpecificCredentials",
        service_credentials_xml("carol", ["ACCAEXAMPLECREDENTIAL1"]),
    )
    no_service_credentials.answer("DeleteServiceSpecificCredential")
    people.person_offboard(iam_user=carol, actor=alice.user)

    with aws.observe_calls() as calls:
        sync.iam_user_sync(iam_user_id=carol.pk)

    writes = [
        c.split(":", 1)[1]
        for c in calls
        if c.split(":", 1)[1].startswith(
            ("Update", "Put", "Delete", "Deactivate", "Detach", "Remove")
        )
    ]
    assert writes == [
        # (1) disabled in the identity account, whatever the roles do
        "DeleteAccessKey",
        "DeleteLoginProfile",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
        "DeleteSigningCertificate",
        "DeleteSSHPublicKey",
        "DeleteServiceSpecificCredential",
        "DeleteUserPolicy",
        "DetachUserPolicy",
        "RemoveUserFromGroup",
        # (2) the trusts: carol's earlier sessions denied first, then dave only
        "PutRolePolicy",
        "UpdateAssumeRolePolicy",
        # (3) the user, once every role converged
        "DeleteUser",
    ]
    assert no_service_credentials.sent.count("DeleteServiceSpecificCredential") == 1
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="carol")
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    trust = iam.get_role(RoleName="payments-deploy")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"]["AWS"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/dave"
    ]
    carol.refresh_from_db()
    assert carol.applied_version == carol.desired_version and not carol.last_error


def test_adding_the_person_again_creates_a_new_user_with_no_old_access(
    carol_everywhere, iam, alice, account, no_service_credentials
):
    old = carol_everywhere
    people.person_offboard(iam_user=old, actor=alice.user)
    sync.iam_user_sync(iam_user_id=old.pk)
    old.refresh_from_db()

    new = people.person_add(
        actor=alice.user,
        account=account,
        iam_user_name="carol",
        email="carol@example.com",
    )
    sync.iam_user_sync(iam_user_id=new.pk)
    new.refresh_from_db()

    assert new.pk != old.pk and new.user_id == old.user_id
    assert new.user.is_active
    assert new.unique_id and new.unique_id != old.unique_id
    assert iam.list_access_keys(UserName="carol")["AccessKeyMetadata"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="carol")
    assert iam.list_mfa_devices(UserName="carol")["MFADevices"] == []
    assert iam.list_user_policies(UserName="carol")["PolicyNames"] == []
    assert iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == []
    assert [
        g["GroupName"] for g in iam.list_groups_for_user(UserName="carol")["Groups"]
    ] == ["opsgate-operators"]
    assert not AccessRequest.active_grants().filter(requester=new).exists()

    # The old record's sync running late must not delete the new user.
    IamUser.objects.filter(pk=old.pk).update(desired_version=old.desired_version + 1)
    sync.iam_user_sync(iam_user_id=old.pk)
    assert iam.get_user(UserName="carol")["User"]["UserId"] == new.unique_id


def test_credentials_added_between_disabling_and_deleting_are_removed_too(
    carol_everywhere, iam, alice, no_service_credentials
):
    """IAM refuses DeleteUser while something is attached (DeleteConflict;
    moto lets it through, so the refusal is injected): the user is emptied
    again, then deleted."""
    people.person_offboard(iam_user=carol_everywhere, actor=alice.user)
    no_service_credentials.fail("DeleteUser", "DeleteConflict", status=409)
    sync.iam_user_sync(iam_user_id=carol_everywhere.pk)
    assert no_service_credentials.sent.count("DeleteUser") == 2
    assert no_service_credentials.sent.count("ListAccessKeys") == 2
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="carol")


def test_a_user_that_is_not_opsgates_is_never_deleted(
    aws_env, iam, account, carol, alice, no_service_credentials
):
    from provisioning.aws import PermanentError

    people.person_offboard(iam_user=carol, actor=alice.user)
    iam.create_user(UserName="carol", Path="/")  # someone else's, same name
    with pytest.raises(PermanentError, match="not managed by opsgate"):
        sync.iam_user_sync(iam_user_id=carol.pk)
    assert iam.get_user(UserName="carol")["User"]["Path"] == "/"


CERT = """-----BEGIN CERTIFICATE-----
MIIBpzCCARACCQCY5yOdxCTrGjANBgkqhkiG9w0BAQsFADAXMRUwEwYDVQQKDAxt
b3RvIHRlc3RpbmcwIBcNMTgxMTA1MTkwNTIwWhgPMjI5MjA4MTkxOTA1MjBaMBcx
FTATBgNVBAoMDG1vdG8gdGVzdGluZzCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkC
gYEA1Jn3g2h7LD3FLqdpcYNbFXCS4V4eDpuTCje9vKFcC3pi/01147X3zdfPy8Mt
ZhKxcREOwm4NXykh23P9KW7fBovpNwnbYsbPqj8Hf1ZaClrgku1arTVhEnKjx8zO
vaR/bVLCss4uE0E0VM1tJn/QGQsfthFsjuHtwx8uIWz35tUCAwEAATANBgkqhkiG
9w0BAQsFAAOBgQBWdOQ7bDc2nWkUhFjZoNIZrqjyNdjlMUndpwREVD7FQ/DuxJMj
FyDHrtlrS80dPUQWNYHw++oACDpWO01LGLPPrGmuO/7cOdojPEd852q5gd+7W9xt
8vUH+pBa6IBLbvBp+szli51V3TLSWcoyy4ceJNQU2vCkTLoFdS0RLd/7tQ==
-----END CERTIFICATE-----"""

SSH_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDk+lG3u5C3UZLPzbfsMHKl9Rz1yGD5Tbfjs1e"
    " carol@example.com"
)


def test_offboarding_works_on_plain_moto_without_service_credentials(
    carol_everywhere, iam, alice, settings
):
    """The demo's setting: moto has no service-specific credential API."""
    settings.OPSGATE = {**settings.OPSGATE, "DELETE_SERVICE_CREDENTIALS": False}
    people.person_offboard(iam_user=carol_everywhere, actor=alice.user)
    with aws.observe_calls() as calls:
        sync.iam_user_sync(iam_user_id=carol_everywhere.pk)
    assert "iam:ListServiceSpecificCredentials" not in calls
    assert calls[-1] == "iam:DeleteUser"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="carol")


def test_the_people_page_says_why_an_offboarded_person_cannot_be_added_yet(
    login, alice, carol
):
    people.person_offboard(iam_user=carol, actor=alice.user)
    response = login(alice).post(
        "/people/add",
        {"iam_user_name": "carol", "email": "carol@example.com"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["iam_user_name"]
    assert errors == [
        "carol was offboarded and their IAM user in default is still being "
        "removed (disabled already; deleted once every role that trusted it is "
        "rewritten). Add the person again once it is gone: the offboarded "
        "record's page shows what it waits for."
    ]
    assert IamUser.objects.filter(name="carol").count() == 1


def test_an_offboarded_user_waiting_for_deletion_gets_no_console_password(
    aws_env, iam, carol, alice, login
):
    from provisioning import direct

    sync.iam_user_sync(iam_user_id=carol.pk)
    carol.refresh_from_db()
    people.person_offboard(iam_user=carol, actor=alice.user)
    with pytest.raises(ValidationError, match="carol is offboarded"):
        direct.console_password_create(iam_user=carol, actor=alice.user)
    client = login(alice)
    page = client.get(f"/people/{carol.pk}/").content.decode()
    assert "carol" in page
    assert "Create a one-time console password" not in page
    client.post(f"/people/{carol.pk}/console-password")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="carol")


def test_an_offboarded_persons_page_shows_the_end_state_plainly(
    aws_env, iam, carol, alice, login, no_service_credentials
):
    """Issue 23: no "has a password", "In sync" and the deleted user's ARN."""
    sync.iam_user_sync(iam_user_id=carol.pk)
    carol.refresh_from_db()
    arn = carol.arn
    people.person_offboard(iam_user=carol, actor=alice.user)
    client = login(alice)
    waiting = client.get(f"/people/{carol.pk}/").content.decode()
    assert "offboarded</span>" in waiting
    assert "being removed: disabled at once" in waiting
    assert "sign-in disabled" in waiting
    assert "has a password" not in waiting
    assert arn not in waiting

    sync.iam_user_sync(iam_user_id=carol.pk)
    done = client.get(f"/people/{carol.pk}/").content.decode()
    assert "IAM user deleted" in done
    assert "In sync" not in done and "being removed" not in done
    assert "Create a one-time console password" not in done
    assert "Offboard…" not in done

"""Rules of the request flow, enforced in services (not only in views)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts_app import trust as trust_rules
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    RequestStatus,
)
from accounts_app.services import access_requests, people, roles
from provisioning import policies, sync
from tests.helpers import request

pytestmark = pytest.mark.django_db


def test_person_add_saves_the_login_and_iam_user_and_an_audit_row(account, alice):
    person = people.person_add(
        actor=alice.user, account=account, iam_user_name="frank", email="f@example.com"
    )
    assert person.user.email == "f@example.com"
    assert not person.user.has_usable_password()
    event = AuditEvent.objects.get(action="person.add", object_id=str(person.pk))
    assert event.actor == alice.user
    assert event.after["iam_user_name"] == "frank"


def test_person_add_rejects_a_case_only_duplicate_and_writes_nothing(account, carol):
    before = (IamUser.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as info:
        people.person_add(actor=None, account=account, iam_user_name="CAROL")
    assert "iam_user_name" in info.value.message_dict
    assert before == (IamUser.objects.count(), AuditEvent.objects.count())


def test_person_add_rejects_a_lookalike_name(account):
    with pytest.raises(ValidationError) as info:
        people.person_add(actor=None, account=account, iam_user_name="аlice")
    assert "iam_user_name" in info.value.message_dict
    assert IamUser.objects.count() == 0


def test_request_then_approve_makes_a_grant_with_expiry_and_bumps_the_role(
    carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    assert req.status == RequestStatus.PENDING
    version = deploy_role.desired_version
    access_requests.access_request_approve(
        access_request=req, approver=bob.user, comment="ok"
    )
    req.refresh_from_db()
    deploy_role.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert req.is_active_grant
    assert (req.expires_at - req.decided_at).total_seconds() == 8 * 3600
    assert deploy_role.desired_version == version + 1
    assert AuditEvent.objects.filter(action="request.approve").count() == 1


def test_approver_cannot_approve_own_request(bob, payments, alice):
    role = roles.role_create(actor=alice.user, project=payments, os_user="readonly")
    req = request(bob, role)
    with pytest.raises(PermissionDenied, match="own request"):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING


def test_approver_of_another_project_cannot_approve(
    carol, erin, deploy_role, other_project
):
    req = request(carol, deploy_role)
    with pytest.raises(PermissionDenied, match="approver of payments"):
        access_requests.access_request_approve(access_request=req, approver=erin.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


def test_a_staff_admin_who_is_not_an_approver_cannot_approve(carol, alice, deploy_role):
    req = request(carol, deploy_role)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_approve(access_request=req, approver=alice.user)


def test_a_second_approve_is_refused_and_leaves_one_audit_row(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    with pytest.raises(ValidationError, match="already approved by bob"):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert AuditEvent.objects.filter(action="request.approve").count() == 1


def test_only_one_pending_request_per_person_and_role(carol, deploy_role):
    request(carol, deploy_role)
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role)
    assert "role" in info.value.message_dict
    assert AccessRequest.objects.count() == 1


def test_duration_must_be_one_the_project_allows(carol, deploy_role):
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role, hours=5)
    assert "Pick one of 1 h, 8 h" in info.value.message_dict["duration_hours"][0]
    with pytest.raises(ValidationError):
        request(carol, deploy_role, hours=None)
    assert AccessRequest.objects.count() == 0


def test_reject_and_cancel_end_pending_requests(carol, dave, bob, deploy_role):
    rejected = access_requests.access_request_reject(
        access_request=request(carol, deploy_role), approver=bob.user, comment="no"
    )
    assert rejected.status == RequestStatus.REJECTED
    cancelled = request(dave, deploy_role)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_cancel(
            access_request=cancelled, actor=carol.user
        )
    access_requests.access_request_cancel(access_request=cancelled, actor=dave.user)
    cancelled.refresh_from_db()
    assert cancelled.status == RequestStatus.CANCELLED
    with pytest.raises(ValidationError, match="only pending"):
        access_requests.access_request_cancel(access_request=cancelled, actor=dave.user)


def test_an_approval_that_would_overflow_the_trust_policy_is_refused(
    carol, bob, deploy_role, settings
):
    used, _ = trust_rules.trust_capacity(deploy_role, extra_user=carol)
    AwsAccount.objects.filter(pk=deploy_role.account_id).update(
        trust_policy_quota=used - 1
    )
    req = request(carol, deploy_role)
    with pytest.raises(ValidationError, match=rf"Role full: .* {used} of {used - 1}"):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING


def test_trust_quota_is_read_from_the_account_summary(aws_env, deploy_role, settings):
    settings.OPSGATE = {**settings.OPSGATE, "DEFAULT_TRUST_POLICY_QUOTA": 1000}
    # Until the worker has read it, the configured default.
    assert trust_rules.trust_capacity(deploy_role) == (0, 1000)
    sync.account_baseline_sync(account_id=deploy_role.account_id)
    deploy_role = OperationRole.objects.get(pk=deploy_role.pk)
    assert deploy_role.account.trust_policy_quota == 2048
    assert trust_rules.trust_capacity(deploy_role) == (0, 2048)


def test_revoke_ends_the_grant_and_bumps_the_role(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    version = deploy_role.__class__.objects.get(pk=deploy_role.pk).desired_version
    access_requests.access_request_revoke(access_request=req, actor=carol.user)
    req.refresh_from_db()
    assert req.status == RequestStatus.REVOKED
    assert not req.is_active_grant
    assert (
        deploy_role.__class__.objects.get(pk=deploy_role.pk).desired_version
        == version + 1
    )


def test_role_create_validates_os_user_and_principals(payments, alice):
    with pytest.raises(ValidationError) as info:
        roles.role_create(actor=alice.user, project=payments, os_user="root")
    assert "os_user" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        roles.role_create(
            actor=alice.user,
            project=payments,
            os_user="ops",
            extra_principal_arns=["arn:aws:iam::111122223333:role/x"],
        )
    assert "extra_principal_arns" in info.value.message_dict
    assert payments.roles.count() == 0


def test_audit_events_are_append_only(carol, deploy_role):
    request(carol, deploy_role)
    event = AuditEvent.objects.first()
    event.action = "tampered"
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()


def test_the_capacity_check_counts_grants_not_ended_of_active_people_and_the_requester(
    carol, dave, erin, bob, deploy_role
):
    """The approval's capacity check reads four columns a person (plain values,
    not model rows): grants not ended count, an expired one and an offboarded
    holder do not, a stored ARN is used as is, and the requester is added."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts_app.models import IamUserState
    from tests.helpers import grant

    grant(carol, deploy_role, bob)
    expired = grant(dave, deploy_role, bob)
    AccessRequest.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    gone = grant(erin, deploy_role, bob)
    IamUser.objects.filter(pk=gone.requester_id).update(state=IamUserState.REMOVED)
    IamUser.objects.filter(pk=carol.pk).update(arn="arn:aws:iam::123456789012:user/x")
    role = OperationRole.objects.select_related("account").get(pk=deploy_role.pk)
    holders = trust_rules.capacity_holders([role.pk])[role.pk]
    assert [h.name for h in holders] == [carol.name]
    principals = trust_rules.role_principals(role, extra_user=dave, holders=holders)
    assert "arn:aws:iam::123456789012:user/x" in principals
    assert len(principals) == 2  # carol (her ARN) and dave; not erin
    used, _ = trust_rules.trust_capacity(role, extra_user=dave)
    assert used == policies.trust_policy_size(principals)

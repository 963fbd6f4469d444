"""The services' own rules, called directly (not through a view), each
asserting the outcome: the rows as stored and the audit trail, not a status
code. A refusal must leave nothing behind; an allowed change must leave its
audit row."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts_app import trust as trust_rules
from accounts_app.models import AccessRequest, AuditEvent, AwsAccount, RequestStatus
from accounts_app.services import access_requests, roles
from tests.helpers import grant, request

pytestmark = pytest.mark.django_db


def _stored(req) -> AccessRequest:
    return AccessRequest.objects.get(pk=req.pk)


def _audit(action, req):
    return list(
        AuditEvent.objects.filter(action=action, object_id=str(req.pk)).values_list(
            "actor__username", flat=True
        )
    )


def _set_quota(role, quota):
    AwsAccount.objects.filter(pk=role.account_id).update(trust_policy_quota=quota)
    role.account.trust_policy_quota = quota


# --- who may decide -------------------------------------------------------------


def test_can_approve_is_true_only_for_an_active_approver_of_that_project(
    bob, carol, erin, payments, other_project
):
    assert access_requests.can_approve(bob.user, payments)
    assert not access_requests.can_approve(bob.user, other_project)
    assert not access_requests.can_approve(carol.user, payments)
    assert not access_requests.can_approve(None, payments)
    bob.user.is_active = False
    bob.user.save()
    assert not access_requests.can_approve(bob.user, payments)


def test_an_inactive_approver_cannot_approve_and_nothing_changes(
    carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    bob.user.is_active = False
    bob.user.save()
    version = deploy_role.desired_version
    with pytest.raises(PermissionDenied):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert _stored(req).status == RequestStatus.PENDING
    assert _stored(req).decided_by is None
    assert _audit("request.approve", req) == []
    deploy_role.refresh_from_db()
    assert deploy_role.desired_version == version


def test_a_staff_admin_who_is_no_approver_cannot_decide(carol, alice, deploy_role):
    req = request(carol, deploy_role)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_approve(access_request=req, approver=alice.user)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_reject(access_request=req, approver=alice.user)
    assert _stored(req).status == RequestStatus.PENDING
    assert _audit("request.approve", req) == []
    assert _audit("request.reject", req) == []


def test_an_approver_cannot_reject_their_own_request(bob, alice, payments):
    role = roles.role_create(actor=alice.user, project=payments, os_user="ro")
    req = request(bob, role)
    with pytest.raises(PermissionDenied, match="own request"):
        access_requests.access_request_reject(access_request=req, approver=bob.user)
    assert _stored(req).status == RequestStatus.PENDING


def test_a_decided_request_cannot_be_decided_again(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    access_requests.access_request_reject(
        access_request=req, approver=bob.user, comment="no"
    )
    with pytest.raises(ValidationError, match="already rejected by bob"):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    stored = _stored(req)
    assert stored.status == RequestStatus.REJECTED
    assert stored.decision_comment == "no"
    assert _audit("request.approve", req) == []
    assert _audit("request.reject", req) == ["bob"]


# --- who may end a grant --------------------------------------------------------


@pytest.mark.parametrize("who", ["requester", "approver", "admin"])
def test_the_requester_an_approver_or_an_admin_can_revoke(
    who, carol, bob, alice, deploy_role
):
    active = grant(carol, deploy_role, bob)
    actor = {"requester": carol, "approver": bob, "admin": alice}[who].user
    version = _stored(active).role.desired_version
    access_requests.access_request_revoke(
        access_request=active, actor=actor, comment=" bye "
    )
    stored = _stored(active)
    assert stored.status == RequestStatus.REVOKED
    assert stored.ended_at is not None
    assert stored.end_comment == "bye"
    assert stored.ended_by == actor
    assert _audit("request.revoke", active) == [actor.username]
    deploy_role.refresh_from_db()
    assert deploy_role.desired_version == version + 1


def test_another_requester_or_another_projects_approver_cannot_revoke(
    carol, dave, erin, bob, deploy_role, other_project
):
    active = grant(carol, deploy_role, bob)
    for outsider in (dave.user, erin.user):
        with pytest.raises(PermissionDenied):
            access_requests.access_request_revoke(access_request=active, actor=outsider)
    stored = _stored(active)
    assert stored.status == RequestStatus.APPROVED
    assert stored.ended_at is None
    assert _audit("request.revoke", active) == []


def test_only_an_active_grant_can_be_revoked(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    with pytest.raises(ValidationError, match="pending, not an active grant"):
        access_requests.access_request_revoke(access_request=req, actor=bob.user)
    assert _stored(req).status == RequestStatus.PENDING


def test_only_the_requester_can_cancel_and_only_while_pending(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_cancel(access_request=req, actor=bob.user)
    assert _stored(req).status == RequestStatus.PENDING
    access_requests.access_request_cancel(access_request=req, actor=carol.user)
    assert _stored(req).status == RequestStatus.CANCELLED
    assert _audit("request.cancel", req) == ["carol"]
    with pytest.raises(ValidationError, match="only pending requests"):
        access_requests.access_request_cancel(access_request=req, actor=carol.user)


# --- the trust capacity, both sides of the quota --------------------------------


def _size_with(role, person):
    """The minified trust policy's length written out by hand (the text
    test_documents_pinned compares with the document), not computed by the
    function the capacity check uses."""
    arn = (
        f"arn:{role.account.partition}:iam::{role.account.account_id}"
        f":user/opsgate/{person.name}"
    )
    text = (
        '{"Version":"2012-10-17","Statement":[{"Sid":"ApprovedOperatorsWithMfa",'
        '"Effect":"Allow","Principal":{"AWS":["' + arn + '"]},'
        '"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent"'
        ':"true"},"StringEquals":{"sts:RoleSessionName":"${aws:username}"}}},'
        '{"Sid":"NoSessionTags","Effect":"Deny","Principal":{"AWS":"*"},'
        '"Action":"sts:TagSession"}]}'
    )
    return len(text)


def test_a_grant_that_fills_the_trust_exactly_to_the_quota_is_approved(
    carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    _set_quota(deploy_role, _size_with(deploy_role, carol))
    assert trust_rules.trust_capacity(deploy_role, extra_user=carol) == (
        _size_with(deploy_role, carol),
        _size_with(deploy_role, carol),
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert _stored(req).status == RequestStatus.APPROVED


def test_a_grant_one_character_over_the_quota_is_refused_and_nothing_changes(
    carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    size = _size_with(deploy_role, carol)
    _set_quota(deploy_role, size - 1)
    version = deploy_role.desired_version
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert f"would need {size} of {size - 1} characters" in info.value.messages[0]
    assert _stored(req).status == RequestStatus.PENDING
    assert _audit("request.approve", req) == []
    deploy_role.refresh_from_db()
    assert deploy_role.desired_version == version

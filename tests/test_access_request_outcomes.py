"""Access requests' outcomes pinned field by field, through the public
services: the audit trail's before and after of every decision, the expiry of
an approval and of an extension, the grant an extension replaces (and only
that one), the field a refusal names, the requester's mail, and the import of
a permanent grant. Measured with scripts/mutation.sh (access_requests)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts_app import trust
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUserState,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, roles
from tests.helpers import grant, request

pytestmark = pytest.mark.django_db

PENDING = {"status": RequestStatus.PENDING, "expires_at": None, "decided_by": None}


def _stored(req) -> AccessRequest:
    return AccessRequest.objects.get(pk=req.pk)


def _audit(action, req) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=action, object_id=str(req.pk)).order_by("id")
    )


def _field_of(exc: ValidationError) -> list:
    return sorted(exc.message_dict)


# --- creating a request ------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_request_without_a_reason_is_refused_on_the_reason_field(
    carol, deploy_role, reason
):
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role, reason=reason)
    assert _field_of(info.value) == ["reason"]
    assert all(info.value.message_dict["reason"])
    assert not AccessRequest.objects.exists()


def test_a_reason_may_hold_2000_characters_and_not_one_more(carol, dave, deploy_role):
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role, reason="r" * 2001)
    assert _field_of(info.value) == ["reason"]
    assert all(info.value.message_dict["reason"])
    assert not AccessRequest.objects.exists()
    req = request(dave, deploy_role, reason=" " + "r" * 2000 + " ")
    assert _stored(req).reason == "r" * 2000


def test_a_request_is_stored_as_asked_with_its_audit_row(carol, deploy_role):
    req = request(carol, deploy_role, 8, reason="  ship it  ")
    stored = _stored(req)
    assert (stored.requester, stored.role, stored.created_by) == (
        carol,
        deploy_role,
        carol.user,
    )
    assert (stored.reason, stored.duration_hours) == ("ship it", 8)
    assert stored.status == RequestStatus.PENDING
    (row,) = _audit("request.create", req)
    assert (row.actor, row.project) == (carol.user, deploy_role.project)
    assert row.before is None
    assert row.after == {
        "role": deploy_role.role_name,
        "reason": "ship it",
        "duration_hours": 8,
    }


def test_the_approvers_are_mailed_a_new_request(
    carol, bob, deploy_role, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert [m.to for m in mailoutbox] == [[bob.email]]


@pytest.mark.parametrize("hours", [None, 5, 0])
def test_a_duration_the_project_does_not_offer_is_refused_on_its_field(
    carol, deploy_role, hours
):
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role, hours)
    assert _field_of(info.value) == ["duration_hours"]
    assert all(info.value.message_dict["duration_hours"])
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.create").exists()


def test_a_second_pending_request_is_refused_on_the_role_field(
    carol, dave, deploy_role
):
    request(carol, deploy_role)
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role)
    assert _field_of(info.value) == ["role"]
    assert all(info.value.message_dict["role"])
    request(dave, deploy_role)  # another person may ask for the same role
    assert AccessRequest.objects.count() == 2


def test_a_pending_request_made_in_between_is_refused_on_the_role_field(
    carol, deploy_role, monkeypatch
):
    # Another request of the same person and role committed after the check
    # ran: the database's constraint refuses it, with the same field error.
    first = request(carol, deploy_role)
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role)
    assert _field_of(info.value) == ["role"]
    assert all(info.value.message_dict["role"])
    assert list(AccessRequest.objects.values_list("pk", flat=True)) == [first.pk]
    assert len(_audit("request.create", first)) == 1
    assert AuditEvent.objects.filter(action="request.create").count() == 1


def test_an_offboarded_person_cannot_request(carol, deploy_role):
    type(carol).objects.filter(pk=carol.pk).update(state=IamUserState.REMOVED)
    carol.refresh_from_db()
    with pytest.raises(ValidationError):
        request(carol, deploy_role)
    assert not AccessRequest.objects.exists()


def test_a_role_in_another_account_is_refused_on_the_role_field(carol, deploy_role):
    other = AwsAccount.objects.create(account_id="210987654321", name="other")
    type(carol).objects.filter(pk=carol.pk).update(account=other)
    carol.refresh_from_db()
    with pytest.raises(ValidationError) as info:
        request(carol, deploy_role)
    assert _field_of(info.value) == ["role"]
    assert all(info.value.message_dict["role"])
    assert not AccessRequest.objects.exists()


# --- the audit trail of each decision ----------------------------------------------


def test_approve_then_revoke_record_the_state_before_and_after(carol, bob, deploy_role):
    req = request(carol, deploy_role, 8)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    approved = _stored(req)
    assert approved.expires_at is not None
    granted = {
        "status": RequestStatus.APPROVED,
        "expires_at": approved.expires_at.isoformat(),
        "decided_by": bob.user.get_username(),
    }
    (row,) = _audit("request.approve", req)
    assert (row.actor, row.before, row.after) == (bob.user, PENDING, granted)

    access_requests.access_request_revoke(
        access_request=req, actor=carol.user, comment="  done  "
    )
    (row,) = _audit("request.revoke", req)
    assert (row.actor, row.before) == (carol.user, granted)
    assert row.after == {**granted, "status": RequestStatus.REVOKED}
    revoked = _stored(req)
    assert revoked.status == RequestStatus.REVOKED
    # The approver's comment stays theirs; who ended it and why are kept apart.
    assert revoked.decision_comment == ""
    assert (revoked.ended_by, revoked.end_comment) == (carol.user, "done")
    assert revoked.ended_at is not None


def test_reject_and_cancel_record_the_state_before_and_after(
    carol, dave, bob, deploy_role
):
    rejected = request(carol, deploy_role)
    access_requests.access_request_reject(
        access_request=rejected, approver=bob.user, comment=" no "
    )
    (row,) = _audit("request.reject", rejected)
    assert (row.actor, row.before) == (bob.user, PENDING)
    assert row.after == {
        "status": RequestStatus.REJECTED,
        "expires_at": None,
        "decided_by": bob.user.get_username(),
    }
    assert _stored(rejected).decision_comment == "no"

    cancelled = request(dave, deploy_role)
    access_requests.access_request_cancel(access_request=cancelled, actor=dave.user)
    (row,) = _audit("request.cancel", cancelled)
    assert (row.actor, row.before) == (dave.user, PENDING)
    assert row.after == {**PENDING, "status": RequestStatus.CANCELLED}


def test_deciding_an_ended_request_says_how_it_ended_and_by_whom(
    carol, dave, bob, deploy_role
):
    cancelled = request(carol, deploy_role)
    access_requests.access_request_cancel(access_request=cancelled, actor=carol.user)
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_approve(
            access_request=cancelled, approver=bob.user
        )
    assert "cancelled" in info.value.messages[0]
    assert " by " not in info.value.messages[0]  # nobody decided it

    rejected = request(dave, deploy_role)
    access_requests.access_request_reject(
        access_request=rejected, approver=bob.user, comment="not this week"
    )
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_approve(
            access_request=rejected, approver=bob.user
        )
    assert f"by {bob.user.get_username()}" in info.value.messages[0]
    assert _stored(rejected).status == RequestStatus.REJECTED
    assert len(_audit("request.approve", rejected)) == 0


# --- expiry and extensions ---------------------------------------------------------


def test_a_permanent_request_approved_never_expires(carol, bob, deploy_role):
    Project.objects.filter(pk=deploy_role.project_id).update(allow_permanent=True)
    deploy_role.project.refresh_from_db()
    req = request(carol, deploy_role, None)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    stored = _stored(req)
    assert stored.status == RequestStatus.APPROVED
    assert stored.expires_at is None
    (row,) = _audit("request.approve", req)
    assert row.after["expires_at"] is None


def test_a_time_bound_grant_expires_after_its_duration(carol, bob, deploy_role):
    before = timezone.now()
    req = grant(carol, deploy_role, bob, hours=8)
    stored = _stored(req)
    assert stored.expires_at == stored.decided_at + timedelta(hours=8)
    assert before <= stored.decided_at <= timezone.now()


def test_a_shorter_extension_keeps_the_current_grants_end_and_replaces_it(
    carol, bob, deploy_role
):
    current = grant(carol, deploy_role, bob, hours=8)
    current_end = _stored(current).expires_at
    version = type(deploy_role).objects.get(pk=deploy_role.pk).desired_version
    extension = request(carol, deploy_role, 1)
    access_requests.access_request_approve(access_request=extension, approver=bob.user)

    new = _stored(extension)
    assert new.status == RequestStatus.APPROVED
    assert new.expires_at == current_end  # never earlier than the current one
    old = _stored(current)
    assert old.status == RequestStatus.EXPIRED
    assert old.ended_at == new.decided_at
    assert old.end_comment == f"Replaced by the extension #{extension.pk}."
    (row,) = _audit("request.extend", current)
    assert row.actor == bob.user
    assert row.before["status"] == RequestStatus.APPROVED
    assert row.after["status"] == RequestStatus.EXPIRED
    assert row.after["replaced_by"] == extension.pk
    # The person stays in the trust: the approval bumps the role once, the
    # replaced grant does not bump it again.
    assert (
        type(deploy_role).objects.get(pk=deploy_role.pk).desired_version == version + 1
    )


def test_a_longer_extension_ends_after_its_own_duration(carol, bob, deploy_role):
    current = grant(carol, deploy_role, bob, hours=1)
    extension = request(carol, deploy_role, 24)
    access_requests.access_request_approve(access_request=extension, approver=bob.user)
    new = _stored(extension)
    assert new.expires_at == new.decided_at + timedelta(hours=24)
    assert new.expires_at > _stored(current).expires_at
    assert _stored(current).status == RequestStatus.EXPIRED


def test_a_grant_on_another_role_is_not_replaced(carol, bob, alice, deploy_role):
    other_role = roles.role_create(
        actor=alice.user, project=deploy_role.project, os_user="ops"
    )
    other = grant(carol, other_role, bob, hours=8)
    req = grant(carol, deploy_role, bob, hours=8)
    assert _stored(req).status == RequestStatus.APPROVED
    assert _stored(other).status == RequestStatus.APPROVED
    assert _stored(other).ended_at is None
    assert _audit("request.extend", other) == []


def test_a_full_trust_refusal_gives_the_advice(carol, bob, deploy_role):
    req = request(carol, deploy_role)
    type(deploy_role.account).objects.filter(pk=deploy_role.account_id).update(
        trust_policy_quota=10
    )
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert info.value.messages[0].endswith(trust.FULL_ON_APPROVE)
    assert _stored(req).status == RequestStatus.PENDING


# --- mail --------------------------------------------------------------------------


def test_the_requester_is_mailed_the_decision(
    carol, bob, deploy_role, mailoutbox, django_capture_on_commit_callbacks
):
    req = request(carol, deploy_role)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert [m.to for m in mailoutbox] == [[carol.email]]


# --- imported grants ---------------------------------------------------------------


def test_an_imported_grant_is_permanent_approved_and_audited(carol, deploy_role):
    now = timezone.now() - timedelta(minutes=5)
    with transaction.atomic():
        imported = access_requests.grant_import(
            requester=carol, role=deploy_role, now=now
        )
    stored = _stored(imported)
    assert (stored.requester, stored.role) == (carol, deploy_role)
    assert stored.status == RequestStatus.APPROVED
    assert stored.reason == access_requests.IMPORT_REASON
    assert stored.duration_hours is None and stored.expires_at is None
    assert stored.decided_at == now and stored.created_at == now
    assert stored.decision_comment == "imported"
    (row,) = _audit("request.import", imported)
    assert (row.actor, row.actor_repr) == (None, "import")
    assert row.project == deploy_role.project
    assert row.after == {"status": RequestStatus.APPROVED, "expires_at": None}

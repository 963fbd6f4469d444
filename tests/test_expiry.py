"""Time-bound access with a controlled clock: grants and stale requests end by
themselves, requesters are reminded once, and an extension is a new request."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts_app.models import AccessRequest, AuditEvent, OperationRole, RequestStatus
from accounts_app.services import access_requests, lifecycle
from tests.helpers import grant, request

pytestmark = pytest.mark.django_db


def status(req):
    req.refresh_from_db()
    return req.status


def test_a_grant_past_its_expiry_is_expired_audited_and_the_role_bumped(
    carol, bob, deploy_role
):
    g = grant(carol, deploy_role, bob, hours=8)
    version = OperationRole.objects.get(pk=deploy_role.pk).desired_version

    early = lifecycle.access_requests_expire(now=g.expires_at - timedelta(seconds=1))
    assert early == {"grants": 0, "pending": 0}
    assert status(g) == RequestStatus.APPROVED

    later = g.expires_at + timedelta(minutes=1)
    assert lifecycle.access_requests_expire(now=later) == {"grants": 1, "pending": 0}
    g.refresh_from_db()
    assert g.status == RequestStatus.EXPIRED
    assert g.ended_at == later
    event = AuditEvent.objects.get(action="request.expire", object_id=str(g.pk))
    assert event.actor is None and event.actor_repr == "opsgate"
    assert event.before["status"] == "approved" and event.after["status"] == "expired"
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert role.desired_version == version + 1
    assert role.sync_requested_at is not None
    # A second run finds nothing left to do.
    assert lifecycle.access_requests_expire(now=later) == {"grants": 0, "pending": 0}


def test_permanent_grants_never_expire(carol, bob, deploy_role):
    deploy_role.project.allow_permanent = True
    deploy_role.project.save()
    g = grant(carol, deploy_role, bob, hours=None)
    far = timezone.now() + timedelta(days=3650)
    assert lifecycle.access_requests_expire(now=far)["grants"] == 0
    assert status(g) == RequestStatus.APPROVED


def test_pending_requests_expire_after_the_configured_age(
    carol, dave, deploy_role, settings
):
    settings.OPSGATE = {**settings.OPSGATE, "PENDING_MAX_AGE_HOURS": 48}
    old, young = request(carol, deploy_role), request(dave, deploy_role)
    now = timezone.now()
    AccessRequest.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=49))
    AccessRequest.objects.filter(pk=young.pk).update(
        created_at=now - timedelta(hours=47)
    )
    version = OperationRole.objects.get(pk=deploy_role.pk).desired_version

    assert lifecycle.access_requests_expire(now=now) == {"grants": 0, "pending": 1}
    assert status(old) == RequestStatus.EXPIRED
    assert status(young) == RequestStatus.PENDING
    assert AuditEvent.objects.filter(action="request.expire").count() == 1
    # No grant ended, so the role has nothing to converge.
    assert OperationRole.objects.get(pk=deploy_role.pk).desired_version == version


def test_the_reminder_goes_once_before_expiry(carol, bob, deploy_role):
    g = grant(carol, deploy_role, bob, hours=168)
    day_before = g.expires_at - timedelta(hours=24)

    assert lifecycle.grant_expiry_reminders_send(now=day_before - timedelta(1)) == 0
    assert mail.outbox == []

    assert lifecycle.grant_expiry_reminders_send(now=day_before) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["carol@example.com"]
    assert "payments-deploy" in message.subject
    assert "request the same role again" in message.body
    g.refresh_from_db()
    assert g.reminder_sent_at == day_before
    assert AuditEvent.objects.filter(action="request.remind").count() == 1

    later = day_before + timedelta(hours=1)
    assert lifecycle.grant_expiry_reminders_send(now=later) == 0
    assert len(mail.outbox) == 1


def test_a_short_grant_is_reminded_a_quarter_of_its_length_before_expiry(
    carol, bob, deploy_role
):
    g = grant(carol, deploy_role, bob, hours=8)
    assert lifecycle.grant_expiry_reminders_send(now=g.decided_at) == 0
    two_hours_left = g.expires_at - timedelta(hours=2)
    assert lifecycle.grant_expiry_reminders_send(now=two_hours_left) == 1
    assert len(mail.outbox) == 1


def test_a_failed_send_leaves_the_reminder_due(carol, bob, deploy_role, monkeypatch):
    g = grant(carol, deploy_role, bob, hours=168)
    now = g.expires_at - timedelta(hours=1)

    def broken(req):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(lifecycle.notifications, "grant_expiry_reminder", broken)
    with pytest.raises(ConnectionRefusedError):
        lifecycle.grant_expiry_reminders_send(now=now)
    g.refresh_from_db()
    assert g.reminder_sent_at is None
    monkeypatch.undo()
    assert lifecycle.grant_expiry_reminders_send(now=now) == 1


def test_an_extension_is_a_new_request_that_replaces_the_grant(carol, bob, deploy_role):
    first = grant(carol, deploy_role, bob, hours=168)
    extension = request(carol, deploy_role, hours=8)  # allowed beside the grant
    access_requests.access_request_approve(access_request=extension, approver=bob.user)

    first.refresh_from_db()
    extension.refresh_from_db()
    assert first.status == RequestStatus.EXPIRED
    assert extension.status == RequestStatus.APPROVED
    # Never shorter than the grant it replaces.
    assert extension.expires_at == first.expires_at
    event = AuditEvent.objects.get(action="request.extend")
    assert event.after["replaced_by"] == extension.pk
    assert [g.pk for g in AccessRequest.active_grants()] == [extension.pk]


def test_expire_access_task_runs_the_lifecycle(carol, bob, deploy_role):
    from provisioning import tasks

    g = grant(carol, deploy_role, bob, hours=1)
    AccessRequest.objects.filter(pk=g.pk).update(
        expires_at=timezone.now() - timedelta(seconds=5)
    )
    assert tasks.expire_access.apply().get() == {
        "grants": 1,
        "pending": 0,
        "scheduled_started": 0,
        "break_glass_overdue": 0,
        "reviews_reminded": 0,
        "reviews_closed": 0,
        "reminders": 0,
        "session_denies": 0,
    }
    assert status(g) == RequestStatus.EXPIRED

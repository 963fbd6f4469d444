"""Issue 13: scheduled access. Approved ahead, listed in the trust only from
its start (the lifecycle run asks the worker then), ended at start +
duration; refused in the past or beyond the project's horizon."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts_app import selectors
from accounts_app.models import AccessRequest, AuditEvent, RequestStatus
from accounts_app.services import access_requests, lifecycle
from provisioning import sync
from tests.helpers import grant
from tests.test_concurrency import trust_users

pytestmark = pytest.mark.django_db


def scheduled(person, role, starts_at, hours=8):
    return access_requests.access_request_create(
        requester=person,
        role=role,
        reason="maintenance window",
        duration_hours=hours,
        actor=person.user,
        starts_at=starts_at,
    )


def test_a_scheduled_request_approved_ahead_waits_for_its_start(
    aws_env, carol, bob, deploy_role, iam
):
    start = timezone.now() + timedelta(days=5)
    req = scheduled(carol, deploy_role, start)
    req = access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert req.status == RequestStatus.APPROVED
    assert req.expires_at == start + timedelta(hours=8)
    assert req.is_scheduled and not req.is_active_grant
    assert list(AccessRequest.active_grants()) == []
    display = selectors.request_display(req)
    assert display.key == "scheduled" and "from " in display.detail
    sync.role_sync(role_id=deploy_role.pk)
    # Not in the trust before the start (no grant: no role in IAM at all).
    assert trust_users(iam, deploy_role.role_name) is None
    assert lifecycle.scheduled_grants_start() == 0

    at_start = start + timedelta(seconds=1)
    version = type(deploy_role).objects.get(pk=deploy_role.pk).desired_version
    assert lifecycle.scheduled_grants_start(now=at_start) == 1
    assert type(deploy_role).objects.get(pk=deploy_role.pk).desired_version == (
        version + 1
    )
    assert AuditEvent.objects.filter(action="request.start").count() == 1
    # Runs again: nothing more to start.
    assert lifecycle.scheduled_grants_start(now=at_start) == 0

    AccessRequest.objects.filter(pk=req.pk).update(
        starts_at=timezone.now() - timedelta(seconds=1)
    )
    sync.role_sync(role_id=deploy_role.pk)
    assert trust_users(iam, deploy_role.role_name) == ["carol"]


def test_a_scheduled_grant_ends_at_start_plus_duration(carol, bob, deploy_role):
    start = timezone.now() + timedelta(hours=2)
    req = scheduled(carol, deploy_role, start, hours=1)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    end = start + timedelta(hours=1)
    assert lifecycle.access_requests_expire(now=end - timedelta(seconds=1)) == {
        "grants": 0,
        "pending": 0,
    }
    assert lifecycle.access_requests_expire(now=end)["grants"] == 1
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.EXPIRED


def test_a_scheduled_request_cannot_replace_a_current_grant(carol, bob, deploy_role):
    grant(carol, deploy_role, bob)
    req = scheduled(carol, deploy_role, timezone.now() + timedelta(days=1))
    with pytest.raises(ValidationError, match="has access to this role now"):
        access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


@pytest.mark.parametrize(
    "offset, hours, message",
    [
        (timedelta(minutes=-1), 8, "in the past"),
        (timedelta(0), 8, "in the past"),
        (timedelta(days=31), 8, "at most 30 days ahead"),
        (timedelta(days=1), None, "needs a duration"),
    ],
)
def test_a_bad_schedule_is_refused_and_writes_nothing(
    payments, carol, deploy_role, offset, hours, message
):
    payments.allow_permanent = True
    payments.save()
    with pytest.raises(ValidationError) as info:
        scheduled(carol, deploy_role, timezone.now() + offset, hours=hours)
    assert message in info.value.message_dict["starts_at"][0]
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.create").exists()


def test_the_horizon_is_the_projects(payments, alice, carol, deploy_role):
    from accounts_app.services import rules

    rules.project_rules_set(
        actor=alice.user, project=payments, schedule_horizon_days=60
    )
    req = scheduled(carol, deploy_role, timezone.now() + timedelta(days=45))
    assert req.starts_at is not None


def test_the_admins_person_page_shows_the_scheduled_window(
    login, alice, carol, bob, deploy_role
):
    from django.urls import reverse

    start = timezone.now() + timedelta(days=3)
    req = scheduled(carol, deploy_role, start)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    text = login(alice).get(reverse("person_detail", args=[carol.pk])).content
    assert b"badge-scheduled" in text
    assert f"from {start:%-d %b %H:%M}".encode() in text

"""Issue 13: break-glass self-activation, its limits, notifications, review,
and the worker's re-check."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    BreakGlassReview,
    RequestStatus,
)
from accounts_app.services import access_requests, break_glass
from provisioning import sync
from tests.helpers import grant
from tests.test_concurrency import trust_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def glass(payments, alice, carol):
    """carol may break glass on payments (1 hour, 2 a day, review in 24 h)."""
    return break_glass.break_glass_set(
        actor=alice.user, project=payments, allow=True, people=[carol.user]
    )


def activate(person, role, reason="prod is down"):
    return break_glass.break_glass_activate(
        requester=person, role=role, reason=reason, actor=person.user
    )


def test_break_glass_makes_a_grant_at_once_for_the_projects_duration(
    glass, carol, deploy_role
):
    version = deploy_role.desired_version
    before = timezone.now()
    req = activate(carol, deploy_role)
    deploy_role.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.break_glass
    assert req.decided_by is None
    assert before + timedelta(hours=1) <= req.expires_at
    assert req.expires_at <= timezone.now() + timedelta(hours=1)
    assert deploy_role.desired_version == version + 1
    review = BreakGlassReview.objects.get(access_request=req)
    assert review.outcome == "" and review.due_at > timezone.now()
    event = AuditEvent.objects.get(action="request.break_glass")
    assert event.actor == carol.user and event.after["reason"] == "prod is down"


def test_break_glass_mails_every_approver_and_admin(
    glass, carol, deploy_role, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        activate(carol, deploy_role)
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {"alice@example.com", "bob@example.com"}
    assert "BREAK-GLASS" in mail.outbox[0].subject


def test_the_worker_provisions_a_break_glass_grant(
    aws_env, glass, carol, deploy_role, iam
):
    req = activate(carol, deploy_role)
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.provisioned_at is not None
    assert trust_users(iam, deploy_role.role_name) == ["carol"]


def test_the_worker_drops_a_break_glass_grant_of_someone_unmarked_since(
    aws_env, glass, alice, carol, deploy_role
):
    req = activate(carol, deploy_role)
    break_glass.break_glass_set(
        actor=alice.user, project=deploy_role.project, allow=False, people=[]
    )
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.REVOKED
    assert "may no longer use break-glass" in req.end_comment


@pytest.mark.parametrize(
    "setup, who, reason, error, text",
    [
        ("allowed", "dave", "x", PermissionDenied, "not marked"),
        ("off", "carol", "x", PermissionDenied, "does not allow"),
        ("allowed", "carol", "  ", ValidationError, "emergency"),
        ("allowed", "carol-for-dave", "x", PermissionDenied, "only for yourself"),
    ],
)
def test_break_glass_refused_writes_nothing(
    payments, alice, carol, dave, deploy_role, setup, who, reason, error, text
):
    break_glass.break_glass_set(
        actor=alice.user,
        project=payments,
        allow=setup == "allowed",
        people=[carol.user] if setup == "allowed" else [],
    )
    events = AuditEvent.objects.count()
    requester, actor = {
        "dave": (dave, dave.user),
        "carol": (carol, carol.user),
        "carol-for-dave": (dave, carol.user),
    }[who]
    with pytest.raises(error, match=text):
        break_glass.break_glass_activate(
            requester=requester, role=deploy_role, reason=reason, actor=actor
        )
    assert not AccessRequest.objects.exists()
    assert AuditEvent.objects.count() == events


def test_break_glass_cannot_extend_itself(glass, carol, deploy_role):
    activate(carol, deploy_role)
    with pytest.raises(ValidationError, match="cannot extend"):
        activate(carol, deploy_role)
    assert AccessRequest.objects.count() == 1


def test_break_glass_cannot_extend_a_normal_grant(glass, carol, bob, deploy_role):
    grant(carol, deploy_role, bob)
    with pytest.raises(ValidationError, match="cannot extend"):
        activate(carol, deploy_role)


def test_break_glass_has_a_daily_cap(glass, carol, deploy_role):
    for _ in range(2):
        req = activate(carol, deploy_role)
        access_requests.access_request_revoke(access_request=req, actor=carol.user)
    with pytest.raises(ValidationError, match="the most it allows"):
        activate(carol, deploy_role)
    # A day later the cap is free again.
    AccessRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert activate(carol, deploy_role).status == RequestStatus.APPROVED


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hours": 0}, "break_glass_hours"),
        ({"hours": 25}, "break_glass_hours"),
        ({"daily_cap": 0}, "break_glass_daily_cap"),
        ({"review_hours": "soon"}, "break_glass_review_hours"),
        ({"people": []}, "people"),
    ],
)
def test_bad_break_glass_settings_are_refused(payments, alice, carol, kwargs, field):
    settings = {"people": [carol.user], **kwargs}
    with pytest.raises(ValidationError) as info:
        break_glass.break_glass_set(
            actor=alice.user, project=payments, allow=True, **settings
        )
    assert field in info.value.message_dict
    payments.refresh_from_db()
    assert not payments.allow_break_glass
    assert not payments.break_glass_people.exists()


# --- Review -------------------------------------------------------------------


def test_an_approver_acknowledges_a_use(glass, carol, bob, deploy_role):
    req = activate(carol, deploy_role)
    review = break_glass.break_glass_review(
        review=req.break_glass_review, actor=bob.user, outcome="acknowledged"
    )
    assert review.outcome == "acknowledged" and review.reviewed_by == bob.user
    assert AuditEvent.objects.filter(action="break_glass.acknowledged").exists()
    assert not break_glass.reviews_open().exists()
    with pytest.raises(ValidationError, match="already"):
        break_glass.break_glass_review(
            review=review, actor=bob.user, outcome="flagged", note="x"
        )


def test_a_flag_needs_a_note_and_mails_the_admins(
    glass, carol, bob, deploy_role, django_capture_on_commit_callbacks
):
    req = activate(carol, deploy_role)
    with pytest.raises(ValidationError):
        break_glass.break_glass_review(
            review=req.break_glass_review, actor=bob.user, outcome="flagged"
        )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        break_glass.break_glass_review(
            review=req.break_glass_review,
            actor=bob.user,
            outcome="flagged",
            note="no incident open",
        )
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


@pytest.mark.parametrize("who", ["carol", "dave"])
def test_the_user_and_non_approvers_cannot_review(glass, carol, dave, deploy_role, who):
    req = activate(carol, deploy_role)
    actor = {"carol": carol.user, "dave": dave.user}[who]
    with pytest.raises(PermissionDenied):
        break_glass.break_glass_review(
            review=req.break_glass_review, actor=actor, outcome="acknowledged"
        )
    assert break_glass.reviews_open().count() == 1


def test_an_overdue_review_is_marked(glass, carol, deploy_role):
    req = activate(carol, deploy_role)
    BreakGlassReview.objects.update(due_at=timezone.now() - timedelta(minutes=1))
    assert BreakGlassReview.objects.get(access_request=req).is_overdue


def test_break_glass_after_an_unmarked_expiry_ends_the_old_grant_first(
    glass, carol, deploy_role
):
    old = activate(carol, deploy_role)
    AccessRequest.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1),
        created_at=timezone.now() - timedelta(hours=2),
    )
    new = activate(carol, deploy_role)
    assert AccessRequest.objects.get(pk=old.pk).status == RequestStatus.EXPIRED
    assert new.status == RequestStatus.APPROVED


def test_break_glass_also_mails_the_project_approvers_where_the_role_has_its_own(
    glass, alice, carol, dave, deploy_role, django_capture_on_commit_callbacks
):
    from accounts_app.services import rules

    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        activate(carol, deploy_role)
    assert set(mail.outbox[0].to) == {
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    }

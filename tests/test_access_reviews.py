"""Issue 13: access reviews. An admin starts one; approvers confirm or revoke
each grant of their projects on one page; at the deadline the rest is revoked
or reported; the result is exported as CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AuditEvent,
    RequestStatus,
)
from accounts_app.services import access_reviews
from tests.helpers import grant

pytestmark = pytest.mark.django_db


def soon(days=7):
    return timezone.now() + timedelta(days=days)


@pytest.fixture
def two_grants(carol, dave, bob, erin, deploy_role, other_project, alice):
    from accounts_app.services import roles

    analyst = roles.role_create(actor=alice.user, project=other_project, os_user="ana")
    return grant(carol, deploy_role, bob, hours=168), grant(dave, analyst, erin)


def test_a_review_covers_the_grants_in_scope_and_mails_their_approvers(
    alice, two_grants, payments, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        review = access_reviews.review_start(
            actor=alice.user, deadline=soon(), projects=[payments]
        )
    assert [i.grant for i in review.items.all()] == [two_grants[0]]
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    event = AuditEvent.objects.get(action="review.start")
    assert event.after["grants"] == 1 and event.after["projects"] == ["payments"]


def test_min_age_keeps_only_standing_grants(alice, two_grants):
    old = two_grants[0]
    AccessRequest.objects.filter(pk=old.pk).update(
        decided_at=timezone.now() - timedelta(days=40)
    )
    review = access_reviews.review_start(
        actor=alice.user, deadline=soon(), min_age_days=30
    )
    assert [i.grant_id for i in review.items.all()] == [old.pk]


def test_an_approver_confirms_and_revokes_on_one_page(login, alice, bob, two_grants):
    review = access_reviews.review_start(actor=alice.user, deadline=soon())
    client = login(bob)
    page = client.get(reverse("access_reviews")).content.decode()
    assert "carol" in page and "dave" not in page  # dave's grant is erin's project
    (item,) = access_reviews.items_for(bob.user)
    client.post(
        reverse("review_item_decide", args=[item.pk]),
        {"decision": "revoked", "note": "left the team"},
    )
    item.refresh_from_db()
    assert item.decision == "revoked" and item.decided_by == bob.user
    assert AccessRequest.objects.get(pk=two_grants[0].pk).status == (
        RequestStatus.REVOKED
    )
    assert AuditEvent.objects.filter(action="review.revoked").count() == 1
    assert review.items.filter(decision="").count() == 1


def test_a_requester_cannot_review_their_own_grant(alice, carol, bob, deploy_role):
    deploy_role.project.approvers.add(carol.user)
    own = grant(carol, deploy_role, bob)
    access_reviews.review_start(actor=alice.user, deadline=soon())
    assert not access_reviews.items_for(carol.user).filter(grant=own).exists()
    item = AccessReviewItem.objects.get(grant=own)
    with pytest.raises(PermissionDenied):
        access_reviews.review_decide(item=item, actor=carol.user, decision="confirmed")


def test_at_the_deadline_unreviewed_grants_are_revoked_when_the_review_says_so(
    alice, bob, two_grants
):
    review = access_reviews.review_start(
        actor=alice.user, deadline=soon(1), on_deadline="revoke"
    )
    first = review.items.get(grant=two_grants[0])
    access_reviews.review_decide(item=first, actor=bob.user, decision="confirmed")
    assert access_reviews.reviews_close_due(now=soon(2)) == 1
    assert AccessRequest.objects.get(pk=two_grants[0].pk).status == (
        RequestStatus.APPROVED
    )
    assert AccessRequest.objects.get(pk=two_grants[1].pk).status == (
        RequestStatus.REVOKED
    )
    review.refresh_from_db()
    assert review.closed_at is not None
    assert review.items.get(grant=two_grants[1]).decision == "revoked_unreviewed"
    assert access_reviews.reviews_close_due(now=soon(3)) == 0


def test_at_the_deadline_unreviewed_grants_are_reported_by_default(alice, two_grants):
    review = access_reviews.review_start(actor=alice.user, deadline=soon(1))
    access_reviews.reviews_close_due(now=soon(2))
    assert set(review.items.values_list("decision", flat=True)) == {"unreviewed"}
    assert AccessRequest.active_grants().count() == 2
    event = AuditEvent.objects.get(action="review.close")
    assert event.after == {"revoked": 0, "reported": 2, "ended": 0}


def test_the_result_is_exported_as_csv(login, alice, bob, two_grants):
    review = access_reviews.review_start(actor=alice.user, deadline=soon())
    item = review.items.get(grant=two_grants[0])
    access_reviews.review_decide(
        item=item, actor=bob.user, decision="confirmed", note="=still on call"
    )
    response = login(alice).get(
        reverse("review_detail", args=[review.pk]) + "?format=csv"
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_person = {r["person"]: r for r in rows}
    assert by_person["carol"]["decision"] == "confirmed"
    assert by_person["carol"]["decided_by"] == "bob"
    assert by_person["carol"]["note"] == "'=still on call"  # no formula
    assert by_person["dave"]["decision"] == "pending"


def test_admin_starts_a_review_on_the_page(login, alice, two_grants):
    deadline = soon().strftime("%Y-%m-%dT%H:%M")
    response = login(alice).post(
        reverse("reviews"), {"deadline": deadline, "on_deadline": "report"}
    )
    assert response.status_code == 302
    review = AccessReview.objects.get()
    assert review.items.count() == 2
    client = login(alice)
    assert f"#{review.pk}" in client.get(reverse("reviews")).content.decode()
    detail = client.get(reverse("review_detail", args=[review.pk])).content.decode()
    assert "carol" in detail and "Export CSV" in detail


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"deadline": timezone.now() - timedelta(hours=1)}, "deadline"),
        ({"deadline": timezone.now() + timedelta(days=91)}, "deadline"),
        ({"min_age_days": 5000}, "min_age_days"),
        ({"on_deadline": "delete"}, "on_deadline"),
    ],
)
def test_bad_review_input_is_refused_and_writes_nothing(
    alice, two_grants, kwargs, field
):
    arguments = {"deadline": soon(), **kwargs}
    with pytest.raises(ValidationError) as info:
        access_reviews.review_start(actor=alice.user, **arguments)
    assert field in info.value.message_dict
    assert not AccessReview.objects.exists()


def test_only_an_admin_starts_a_review(bob, two_grants):
    with pytest.raises(PermissionDenied):
        access_reviews.review_start(actor=bob.user, deadline=soon())
    assert not AccessReview.objects.exists()


def test_approvers_with_undecided_grants_are_reminded_once_a_day_before(
    alice, bob, two_grants, django_capture_on_commit_callbacks
):
    review = access_reviews.review_start(actor=alice.user, deadline=soon(3))
    access_reviews.review_decide(
        item=review.items.get(grant=two_grants[0]), actor=bob.user, decision="confirmed"
    )
    assert access_reviews.reviews_remind(now=soon(1)) == 0  # two days before
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert access_reviews.reviews_remind(now=soon(2) + timedelta(hours=1)) == 1
    # Only erin (dave's grant) still has something to decide.
    assert [m.to for m in mail.outbox] == [["erin@example.com"]]
    assert "Reminder" in mail.outbox[0].subject
    assert access_reviews.reviews_remind(now=soon(2) + timedelta(hours=2)) == 0

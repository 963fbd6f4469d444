"""Issue 13: auto-approval rules per role: listed people, up to a duration,
a grant at once, the approvers told, the audit naming the rule."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts_app.models import AccessRequest, AuditEvent, RequestStatus
from accounts_app.services import rules
from provisioning import sync
from tests.helpers import request

pytestmark = pytest.mark.django_db


@pytest.fixture
def readonly_rule(alice, carol, deploy_role):
    return rules.auto_rule_add(
        actor=alice.user,
        role=deploy_role,
        name="on-call read-only",
        people=[carol.user],
        max_hours=8,
    )


def test_a_listed_person_within_the_duration_gets_a_grant_at_once(
    readonly_rule, carol, deploy_role, django_capture_on_commit_callbacks
):
    version = deploy_role.desired_version
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        req = request(carol, deploy_role, hours=8)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.auto_approved
    assert req.decided_by is None and req.expires_at is not None
    assert "Auto-approved by rule on-call read-only" in req.decision_comment
    deploy_role.refresh_from_db()
    assert deploy_role.desired_version == version + 1
    event = AuditEvent.objects.get(action="request.auto_approve")
    assert event.after["rule"] == "on-call read-only"
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert "auto-approved by rule on-call read-only" in mail.outbox[0].body


@pytest.mark.parametrize("who, hours", [("carol", 24), ("dave", 8)])
def test_others_or_longer_requests_wait_for_approval(
    readonly_rule, carol, dave, deploy_role, who, hours
):
    person = {"carol": carol, "dave": dave}[who]
    req = request(person, deploy_role, hours=hours)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING
    assert not AuditEvent.objects.filter(action="request.auto_approve").exists()


def test_the_worker_drops_an_auto_grant_whose_rule_no_longer_lists_the_person(
    aws_env, readonly_rule, alice, carol, deploy_role
):
    req = request(carol, deploy_role, hours=8)
    rules.auto_rule_remove(actor=alice.user, rule=readonly_rule)
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.REVOKED
    assert "no longer lists carol" in req.end_comment


def test_the_worker_provisions_an_auto_grant(
    aws_env, readonly_rule, carol, deploy_role
):
    req = request(carol, deploy_role, hours=8)
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.provisioned_at


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": ""}, "name"),
        ({"max_hours": 0}, "max_hours"),
        ({"max_hours": "eight"}, "max_hours"),
        ({"people": []}, "people"),
    ],
)
def test_bad_rules_are_refused_and_write_nothing(
    alice, carol, deploy_role, kwargs, field
):
    arguments = {"name": "r", "people": [carol.user], "max_hours": 8, **kwargs}
    with pytest.raises(ValidationError) as info:
        rules.auto_rule_add(actor=alice.user, role=deploy_role, **arguments)
    assert field in info.value.message_dict
    assert not deploy_role.auto_rules.exists()


def test_admin_adds_and_removes_a_rule_on_the_role_page(
    login, alice, carol, deploy_role
):
    client = login(alice)
    url = reverse("role_rules", args=[deploy_role.pk])
    response = client.post(
        url, {"add_rule": "1", "name": "ro", "people": "carol", "max_hours": "4"}
    )
    assert response.status_code == 302
    rule = deploy_role.auto_rules.get()
    assert (rule.name, rule.max_hours) == ("ro", 4)
    client.post(url, {"remove_rule": str(rule.pk)})
    assert not deploy_role.auto_rules.exists()
    assert AuditEvent.objects.filter(action="role.auto_rule_remove").count() == 1

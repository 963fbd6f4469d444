"""Issue 21 item 4: an admin's ticket pattern runs on RE2, never on Python's
backtracking `re`. `^(a+)+$` against 'a'*31 + '!' held a gunicorn worker 31 s;
RE2 answers in linear time, and patterns RE2 cannot run are refused when
saved, with the reason on the form."""

import re
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts_app import approval_rules
from accounts_app.models import AccessRequest, AuditEvent, Project
from accounts_app.services import access_requests, rules

pytestmark = pytest.mark.django_db

EVIL_PATTERN = r"^(a+)+$"
EVIL_TICKET = "a" * 31 + "!"


@pytest.fixture
def no_backtracking_re(monkeypatch):
    """Python's `re` must not run an admin's pattern: any call from the
    approval rules fails the test (instead of backtracking for 31 s)."""

    def refuse(*args, **kwargs):
        raise AssertionError("an admin pattern reached Python's re")

    stub = SimpleNamespace(
        **{n: refuse for n in ("compile", "fullmatch", "match", "search")},
        error=re.error,
        ASCII=re.ASCII,
    )
    monkeypatch.setattr(approval_rules, "re", stub)


def test_the_catastrophic_pattern_is_saved_and_matched_by_re2(
    payments, alice, carol, deploy_role, no_backtracking_re
):
    rules.project_rules_set(
        actor=alice.user, project=payments, ticket_pattern=EVIL_PATTERN
    )
    compiled = approval_rules.ticket_regex(EVIL_PATTERN)
    assert type(compiled).__module__ == "re2"
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="maintenance",
            duration_hours=8,
            actor=carol.user,
            ticket=EVIL_TICKET,
        )
    assert "does not match" in info.value.message_dict["ticket"][0]
    assert not AccessRequest.objects.exists()
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="maintenance",
        duration_hours=8,
        actor=carol.user,
        ticket="a" * 31,
    )
    assert req.ticket == "a" * 31


@pytest.mark.parametrize(
    "pattern",
    [r"^(OPS)-[0-9]+-\1$", r"^(?=OPS)[A-Z]+-[0-9]+$", r"^(?!TMP)[A-Z]+$"],
)
def test_a_pattern_re2_cannot_run_is_refused_with_the_reason(payments, alice, pattern):
    with pytest.raises(ValidationError) as info:
        rules.project_rules_set(
            actor=alice.user, project=payments, ticket_pattern=pattern
        )
    message = info.value.message_dict["ticket_pattern"][0]
    assert "Not a valid regular expression" in message
    assert "RE2" in message and "backreferences" in message
    payments.refresh_from_db()
    assert payments.ticket_pattern == ""
    assert not AuditEvent.objects.filter(action="project.rules").exists()


def test_a_backreference_on_the_rules_page_is_a_field_error(login, alice, payments):
    response = login(alice).post(
        reverse("project_rules", args=[payments.pk]),
        {
            "approvals_required": "1",
            "schedule_horizon_days": "30",
            "ticket_pattern": r"^(a)\1$",
        },
    )
    assert response.status_code == 200
    errors = " ".join(response.context["rules_form"].errors["ticket_pattern"])
    assert "invalid escape sequence" in errors and "backreferences" in errors


def test_a_pattern_saved_before_re2_refuses_tickets_instead_of_backtracking(
    payments, carol, deploy_role, no_backtracking_re
):
    # Saved by an older version (no RE2 check): the ticket is refused with a
    # message, and no backtracking engine is tried.
    Project.objects.filter(pk=payments.pk).update(ticket_pattern=r"^(a)\1$")
    deploy_role.project.refresh_from_db()
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="maintenance",
            duration_hours=8,
            actor=carol.user,
            ticket="aa",
        )
    assert "cannot be checked" in info.value.message_dict["ticket"][0]


def test_a_ticket_longer_than_the_bound_is_refused_before_matching(
    payments, alice, carol, deploy_role
):
    rules.project_rules_set(actor=alice.user, project=payments, ticket_pattern="^a+$")
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="maintenance",
            duration_hours=8,
            actor=carol.user,
            ticket="a" * (approval_rules.TICKET_MAX_LENGTH + 1),
        )
    assert "At most" in info.value.message_dict["ticket"][0]

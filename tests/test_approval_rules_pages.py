"""Issue 13 on the pages: what approvers, requesters and admins see of the
approval rules, and the forms that set and use them (bad input: a field
error, nothing written)."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    BreakGlassReview,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, break_glass, rules
from tests.conftest import give_totp
from tests.helpers import request

pytestmark = pytest.mark.django_db


def page(client, name, *args, **query) -> str:
    url = reverse(name, args=args)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return html.unescape(client.get(url).content.decode())


@pytest.fixture
def quorum2(payments, alice, dave):
    payments.approvers.add(dave.user)
    return rules.project_rules_set(
        actor=alice.user, project=payments, approvals_required=2
    )


@pytest.fixture
def tickets(payments, alice):
    return rules.project_rules_set(
        actor=alice.user,
        project=payments,
        ticket_pattern=r"^OPS-[0-9]+$",
        ticket_url_template="https://tracker.example.com/browse/{ticket}",
    )


# --- Quorum -------------------------------------------------------------------


def test_the_approvals_page_shows_one_of_two_approvals_by_whom(
    login, quorum2, carol, bob, dave, deploy_role
):
    req = request(carol, deploy_role)
    response = login(bob).post(
        reverse("decide", args=[req.pk]), {"decision": "approve"}, follow=True
    )
    text = html.unescape(response.content.decode())
    assert "1 of 2 approvals; it waits for another approver" in text
    assert "You approved this request" in text
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING
    other = page(login(dave), "approvals")
    assert "1 of 2 approvals, by bob" in other
    assert f'action="{reverse("decide", args=[req.pk])}"' in other


def test_my_access_shows_the_quorum_progress(login, quorum2, carol, bob, deploy_role):
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert "1 of 2 approvals, by bob" in page(login(carol), "home")


def test_a_role_approver_sees_and_decides_the_roles_requests(
    login, payments, alice, carol, dave, deploy_role
):
    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    give_totp(dave.user)
    req = request(carol, deploy_role)
    client = login(dave)
    assert "carol" in page(client, "approvals")
    client.post(reverse("decide", args=[req.pk]), {"decision": "approve"})
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


def test_the_project_page_shows_the_settings_and_links_the_page_that_sets_them(
    login, alice, carol, payments, tickets
):
    client = login(alice)
    detail = page(client, "project_detail", payments.pk)
    settings_url = reverse("project_settings", args=[payments.pk])
    assert f'href="{settings_url}"' in detail
    assert "^OPS-[0-9]+$" in detail and "Slack: not set" in detail
    forms = [
        f'action="{reverse(name, args=[payments.pk])}"'
        for name in ("project_rules", "project_break_glass", "project_webhooks")
    ]
    assert not any(form in detail for form in forms)
    settings = page(client, "project_settings", payments.pk)
    assert all(form in settings for form in forms)
    assert 'value="^OPS-[0-9]+$"' in settings  # the rules form shows what is set
    assert login(carol).get(settings_url).status_code in (302, 403)


def test_admin_sets_a_quorum_on_the_project_page(login, alice, payments):
    client = login(alice)
    response = client.post(
        reverse("project_rules", args=[payments.pk]),
        {"approvals_required": "2", "schedule_horizon_days": "30"},
    )
    assert response.status_code == 302
    payments.refresh_from_db()
    assert payments.approvals_required == 2
    assert "Approvals needed" in page(client, "project_detail", payments.pk)


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"approvals_required": "4"}, "approvals_required", "Between 1 and 3"),
        ({"approvals_required": "0"}, "approvals_required", "Between 1 and 3"),
        (
            {"approvals_required": "1", "ticket_pattern": "OPS-[0-9"},
            "ticket_pattern",
            "Not a valid regular expression",
        ),
        (
            {
                "approvals_required": "1",
                "ticket_pattern": "^OPS-[0-9]+$",
                "ticket_url_template": "ftp://x/{ticket}",
            },
            "ticket_url_template",
            "https://",
        ),
        (
            {"approvals_required": "1", "schedule_horizon_days": "400"},
            "schedule_horizon_days",
            "1 to 365",
        ),
    ],
)
def test_bad_project_rules_on_the_page_are_field_errors(
    login, alice, payments, data, field, message
):
    events = AuditEvent.objects.count()
    data = {"schedule_horizon_days": "30", **data}
    response = login(alice).post(reverse("project_rules", args=[payments.pk]), data)
    assert response.status_code == 200
    assert message in " ".join(response.context["rules_form"].errors[field])
    assert AuditEvent.objects.count() == events
    payments.refresh_from_db()
    assert (payments.approvals_required, payments.ticket_pattern) == (1, "")


def test_admin_names_role_approvers_on_the_role_page(login, alice, dave, deploy_role):
    client = login(alice)
    assert "Approval rules of" in page(client, "role_rules", deploy_role.pk)
    response = client.post(
        reverse("role_rules", args=[deploy_role.pk]),
        {"approvers": "dave", "approvers_replace_project": "on", "save_rules": "1"},
    )
    assert response.status_code == 302
    deploy_role.refresh_from_db()
    assert list(deploy_role.approvers.all()) == [dave.user]
    assert deploy_role.approvers_replace_project


def test_a_requester_cannot_reach_the_rules_pages(login, carol, payments, deploy_role):
    client = login(carol)
    assert client.get(reverse("role_rules", args=[deploy_role.pk])).status_code in (
        302,
        403,
    )
    response = client.post(
        reverse("project_rules", args=[payments.pk]), {"approvals_required": "3"}
    )
    assert response.status_code in (302, 403)
    assert Project.objects.get(pk=payments.pk).approvals_required == 1


# --- Tickets ------------------------------------------------------------------


def test_the_request_form_asks_for_a_ticket_and_shows_its_link(
    login, tickets, carol, bob, deploy_role
):
    client = login(carol)
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    assert "requires a ticket matching" in html.unescape(
        client.get(url).content.decode()
    )
    bad = client.post(
        url, {"role": deploy_role.pk, "reason": "x", "duration": "8", "ticket": "7"}
    )
    assert bad.status_code == 200
    assert "does not match" in " ".join(bad.context["form"].errors["ticket"])
    assert not AccessRequest.objects.exists()
    client.post(
        url,
        {"role": deploy_role.pk, "reason": "x", "duration": "8", "ticket": "OPS-7"},
    )
    link = 'href="https://tracker.example.com/browse/OPS-7"'
    assert link in page(client, "home")
    assert link in page(login(bob), "approvals")
    assert link in page(login(tickets.approvers.first()), "approvals")


def test_the_audit_log_links_the_ticket(login, tickets, alice, carol, deploy_role):
    access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
        ticket="OPS-9",
    )
    assert 'href="https://tracker.example.com/browse/OPS-9"' in page(
        login(alice), "audit"
    )


def test_a_project_without_tickets_shows_no_ticket_field(login, carol, deploy_role):
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    assert 'name="ticket"' not in login(carol).get(url).content.decode()


# --- Break-glass --------------------------------------------------------------


@pytest.fixture
def glass(payments, alice, carol):
    return break_glass.break_glass_set(
        actor=alice.user, project=payments, allow=True, people=[carol.user]
    )


def test_a_marked_person_breaks_glass_from_the_request_page(
    login, glass, carol, deploy_role
):
    client = login(carol)
    text = page(client, "request_access", project=deploy_role.project_id)
    assert "Break-glass: emergency access now" in text
    response = client.post(
        reverse("break_glass_activate") + f"?project={deploy_role.project_id}",
        {"bg-role": deploy_role.pk, "bg-reason": "payments API down"},
    )
    assert response.status_code == 302
    req = AccessRequest.objects.get()
    assert req.break_glass and req.status == RequestStatus.APPROVED


def test_an_unmarked_person_sees_no_break_glass_and_cannot_post_it(
    login, glass, dave, deploy_role
):
    client = login(dave)
    text = page(client, "request_access", project=deploy_role.project_id)
    assert "Break-glass" not in text
    response = client.post(
        reverse("break_glass_activate") + f"?project={deploy_role.project_id}",
        {"bg-role": deploy_role.pk, "bg-reason": "let me in"},
    )
    assert response.status_code == 400
    assert "not marked for break-glass" in html.unescape(response.content.decode())
    assert not AccessRequest.objects.exists()


def test_a_break_glass_reason_is_mandatory_on_the_page(
    login, glass, carol, deploy_role
):
    response = login(carol).post(
        reverse("break_glass_activate") + f"?project={deploy_role.project_id}",
        {"bg-role": deploy_role.pk, "bg-reason": "  "},
    )
    assert response.status_code == 400
    assert not AccessRequest.objects.exists()
    # The page after the error names the approvers, like the page before it.
    text = html.unescape(response.content.decode())
    assert "Approvers of payments: bob<" in text


def test_an_approver_acknowledges_a_use_on_the_approvals_page(
    login, glass, carol, bob, deploy_role
):
    req = break_glass.break_glass_activate(
        requester=carol, role=deploy_role, reason="down", actor=carol.user
    )
    client = login(bob)
    assert "Break-glass uses to review" in page(client, "approvals")
    client.post(
        reverse("break_glass_review", args=[req.break_glass_review.pk]),
        {"outcome": "acknowledged"},
    )
    assert BreakGlassReview.objects.get().outcome == "acknowledged"
    assert "Break-glass uses to review" not in page(client, "approvals")


def test_the_dashboard_lists_unreviewed_uses_overdue_in_red(
    login, glass, alice, carol, dave, deploy_role, other_project
):
    break_glass.break_glass_activate(
        requester=carol, role=deploy_role, reason="down", actor=carol.user
    )
    text = page(login(alice), "dashboard")
    assert "Break-glass uses not reviewed" in text
    assert 'data-overdue="no"' in text
    BreakGlassReview.objects.update(due_at=timezone.now() - timedelta(hours=1))
    text = page(login(alice), "dashboard")
    assert 'class="overdue" data-overdue="yes"' in text


def test_admin_marks_break_glass_people_on_the_project_page(
    login, alice, carol, payments
):
    response = login(alice).post(
        reverse("project_break_glass", args=[payments.pk]),
        {
            "allow_break_glass": "on",
            "people": "carol",
            "break_glass_hours": "2",
            "break_glass_daily_cap": "1",
            "break_glass_review_hours": "12",
        },
    )
    assert response.status_code == 302
    payments.refresh_from_db()
    assert payments.allow_break_glass and payments.break_glass_hours == 2
    assert list(payments.break_glass_people.all()) == [carol.user]


# --- Scheduled access and webhooks ----------------------------------------------


def test_a_scheduled_request_shows_its_window(login, carol, bob, deploy_role):
    client = login(carol)
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    start = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    client.post(
        url,
        {
            "role": deploy_role.pk,
            "reason": "maintenance",
            "duration": "8",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    req = AccessRequest.objects.get()
    assert req.starts_at == start
    assert "scheduled from" in page(client, "home")
    assert "scheduled" in page(login(bob), "approvals")
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    assert "Scheduled" in page(login(carol), "home")


def test_a_past_start_is_a_field_error(login, carol, deploy_role):
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    response = login(carol).post(
        url,
        {
            "role": deploy_role.pk,
            "reason": "x",
            "duration": "8",
            "starts_at": "2020-01-01T02:00",
        },
    )
    assert response.status_code == 200
    assert "in the past" in " ".join(response.context["form"].errors["starts_at"])
    assert not AccessRequest.objects.exists()


def test_webhook_urls_are_never_shown_again(login, alice, payments):
    secret = "https://hooks.slack.com/services/T0/B0/SECRET"
    client = login(alice)
    client.post(
        reverse("project_webhooks", args=[payments.pk]),
        {"slack_webhook_url": secret},
    )
    payments.refresh_from_db()
    assert payments.slack_webhook_url == secret
    text = page(client, "project_detail", payments.pk)
    assert "SECRET" not in text and "Slack: set" in text.replace(
        "<strong>", ""
    ).replace("</strong>", "")
    bad = client.post(
        reverse("project_webhooks", args=[payments.pk]),
        {"teams_webhook_url": "http://insecure.example.com/hook"},
    )
    assert bad.status_code == 200
    assert bad.context["webhooks_form"].errors["teams_webhook_url"]

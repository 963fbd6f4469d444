"""Issue 13 in a real browser (the fixtures of test_browser.py: Debian's
chromium, the CSP watch): a quorum of two approvers, and break-glass with
its review."""

import os

import pytest

from accounts_app.models import AccessRequest, BreakGlassReview, RequestStatus
from accounts_app.services import access_requests, break_glass, rules
from provisioning import sync
from tests import test_browser
from tests.conftest import give_totp
from tests.test_browser import shot, sign_in, trust_principals, with_password

# test_browser.py's fixtures: chromium's launch arguments and the CSP watch.
browser = test_browser.browser
browser_type_launch_args = test_browser.browser_type_launch_args

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_two_approvers_make_a_quorum_in_the_browser(
    aws_env, live_server, browser, alice, bob, carol, dave, deploy_role
):
    from playwright.sync_api import expect

    payments = deploy_role.project
    payments.approvers.add(dave.user)
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    for person in (bob, carol, dave):
        with_password(person)
    give_totp(bob.user), give_totp(dave.user)
    access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="CHG-7: rotate the TLS key",
        duration_hours=8,
        actor=carol.user,
    )

    first = sign_in(browser, live_server, "bob@example.com", totp=True)
    first.get_by_role("link", name="Approvals").click()
    card = first.locator("article.request", has_text="carol")
    expect(card).to_contain_text("0 of 2 approvals")
    card.get_by_role("button", name="Approve").click()
    expect(first.get_by_role("status").first).to_contain_text("1 of 2 approvals")
    expect(first.locator("article.request", has_text="carol")).to_contain_text(
        "You approved this request"
    )
    assert AccessRequest.objects.get().status == RequestStatus.PENDING

    second = sign_in(browser, live_server, "dave@example.com", totp=True)
    second.get_by_role("link", name="Approvals").click()
    card = second.locator("article.request", has_text="carol")
    expect(card).to_contain_text("1 of 2 approvals, by bob")
    shot(second, "approvals-quorum")
    card.get_by_role("button", name="Approve").click()
    expect(second.get_by_role("status").first).to_contain_text("Approved carol")
    assert AccessRequest.objects.get().status == RequestStatus.APPROVED

    sync.role_sync(role_id=deploy_role.pk)
    assert [p.rsplit("/", 1)[1] for p in trust_principals("payments-deploy")] == [
        "carol"
    ]


def test_break_glass_is_used_and_reviewed_in_the_browser(
    aws_env, live_server, browser, alice, bob, carol, deploy_role
):
    from playwright.sync_api import expect

    break_glass.break_glass_set(
        actor=alice.user, project=deploy_role.project, allow=True, people=[carol.user]
    )
    for person in (alice, bob, carol):
        with_password(person)
    give_totp(alice.user), give_totp(bob.user)

    user = sign_in(browser, live_server, "carol@example.com")
    user.goto(f"{live_server.url}/request/?project={deploy_role.project_id}")
    glass = user.locator("#break-glass")
    glass.get_by_label("Reason").fill("INC-99: payments API down")
    shot(user, "break-glass")
    glass.get_by_role("button", name="Break glass").click()
    expect(user.get_by_role("status").first).to_contain_text("Break-glass access")
    grant = AccessRequest.objects.get()
    assert grant.break_glass and grant.status == RequestStatus.APPROVED

    admin = sign_in(browser, live_server, "alice@example.com", totp=True)
    admin.goto(f"{live_server.url}/dashboard/")
    row = admin.locator("section[aria-labelledby=glass-h] tbody tr")
    expect(row).to_have_attribute("data-overdue", "no")

    approver = sign_in(browser, live_server, "bob@example.com", totp=True)
    approver.get_by_role("link", name="Approvals").click()
    review = approver.locator("article", has_text="INC-99")
    expect(review).to_contain_text("break-glass")
    review.get_by_role("button", name="Acknowledge").click()
    expect(approver.get_by_role("status").first).to_contain_text("acknowledged")
    assert BreakGlassReview.objects.get().outcome == "acknowledged"

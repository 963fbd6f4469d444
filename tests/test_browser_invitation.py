"""Issue 21 item 2 in a real browser, under the CSP watch of
tests/test_browser.py: a person an admin adds in the portal follows the
invitation, is made an approver, and sets up TOTP at their first sign-in
(allauth used to refuse: "verify your email address" first)."""

import re

import pytest
from django.core import mail

from accounts_app.models import AccessRequest
from accounts_app.services import access_requests
from tests import test_browser
from tests.conftest import give_totp, totp_code
from tests.test_browser import PASSWORD, shot, sign_in, with_password

browser = test_browser.browser
browser_type_launch_args = test_browser.browser_type_launch_args

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_new_approver_goes_from_invitation_to_totp_to_the_approvals_page(
    aws_env, live_server, browser, alice, carol, deploy_role
):
    from playwright.sync_api import expect

    with_password(alice)
    give_totp(alice.user)
    url = live_server.url
    pending = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="CHG-42 hotfix",
        duration_hours=8,
        actor=carol.user,
    )

    # The admin adds Grace; the invitation goes to her address.
    admin = sign_in(browser, live_server, "alice@example.com", totp=True)
    admin.goto(f"{url}/people/add")
    admin.get_by_label("First name").fill("Grace")
    admin.get_by_label("E-mail").fill("grace@example.com")
    admin.get_by_label("IAM user name").fill("grace")
    admin.get_by_role("button", name="Add person").click()
    expect(admin.get_by_role("status").first).to_contain_text("Added grace")
    (invitation,) = [m for m in mail.outbox if m.to == ["grace@example.com"]]
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+", invitation.body)

    # Grace sets her password from the link.
    grace = browser.new_context().new_page()
    grace.goto(link.group(0))
    grace.locator("input[name=password1]").fill(PASSWORD)
    grace.locator("input[name=password2]").fill(PASSWORD)
    grace.get_by_role("button", name="Set password").click()
    expect(grace.locator("main")).to_contain_text("Your password is set")

    # The admin makes her an approver of payments.
    admin.goto(f"{url}/projects/{deploy_role.project_id}/edit")
    admin.get_by_role("textbox", name="Approvers").fill("bob, grace")
    admin.get_by_role("button", name="Save project").click()
    expect(admin.get_by_role("status").first).to_contain_text("saved")

    # She signs in, is sent to the authenticator set-up, and sets it up.
    grace.goto(f"{url}/accounts/login/")
    grace.get_by_label("Email").fill("grace@example.com")
    grace.get_by_label("Password").fill(PASSWORD)
    grace.get_by_role("button", name="Sign In").click()
    grace.wait_for_url(re.compile(r"/accounts/2fa/totp/activate/"))
    expect(grace.locator("main")).not_to_contain_text("verified your email")
    secret = grace.locator("#authenticator_secret").input_value()
    grace.locator("input[name=code]").fill(totp_code(secret))
    grace.get_by_role("button", name="Activate").click()
    grace.wait_for_url(re.compile(r"/accounts/2fa/recovery-codes/"))

    # And reaches the approvals page, with Carol's request on it.
    grace.goto(f"{url}/approvals/")
    expect(grace.locator("h1")).to_contain_text("Approvals")
    expect(grace.locator("main")).to_contain_text("CHG-42 hotfix")
    shot(grace, "new-approver-approvals")
    assert AccessRequest.objects.get(pk=pending.pk).status == "pending"

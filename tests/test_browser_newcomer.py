"""Issue 23 in a real browser: the pages of a newcomer's first hour. Nothing
the browser cuts from what was typed; the demo's sign-in page and mail page;
an offboarded person's end state; the break-glass page after an error; a TOTP
code used twice; "just now" instead of "0 minutes".

Admins and approvers start signed in with a session of the test client (no
sign-in form, no wait for a fresh TOTP window); the sign-in form itself is
walked where it is the page under test."""

import re
import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from accounts_app.models import AccessRequest, IamUser
from accounts_app.services import access_requests, break_glass, people
from provisioning import sync
from tests import test_browser, test_offboarding
from tests.conftest import TOTP_SECRET, give_totp
from tests.helpers import request
from tests.test_browser import PASSWORD, with_password
from tests.workers import ROOT

# The browser fixtures of test_browser.py (Debian's chromium; every test fails
# on a CSP violation) and the moto answer offboarding needs.
browser_type_launch_args = test_browser.browser_type_launch_args
browser = test_browser.browser
no_service_credentials = test_offboarding.no_service_credentials

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(browser, live_server, person, **context):
    """A page whose context holds a session of `person` (admins and approvers
    get TOTP first, as the portal requires of them)."""
    from allauth.mfa.models import Authenticator

    user = person.user
    if (user.is_staff or user.approver_of.exists()) and not (
        Authenticator.objects.filter(user=user).exists()
    ):
        give_totp(user)
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page_context = browser.new_context(**context)
    page_context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session,
                "url": live_server.url,
            }
        ]
    )
    return page_context.new_page()


# --- Item 4: the browser cuts nothing; the server says what is too long -------


def test_a_65_character_iam_name_is_refused_as_typed_not_cut_to_64(
    live_server, browser, alice
):
    page = signed_in(browser, live_server, alice)
    page.goto(f"{live_server.url}/people/add")
    typed = "f" * 65
    page.get_by_label("E-mail").fill("frank@example.com")
    page.get_by_label("IAM user name").fill(typed)
    # The field holds all 65 characters: no `maxlength` cut them.
    expect(page.get_by_label("IAM user name")).to_have_value(typed)
    page.get_by_role("button", name="Add person").click()
    expect(page.locator("main")).to_contain_text(
        "Ensure this value has at most 64 characters (it has 65)."
    )
    expect(page.get_by_label("IAM user name")).to_have_value(typed)
    expect(page.get_by_label("IAM user name")).to_have_attribute("aria-invalid", "true")
    assert not IamUser.objects.filter(name__startswith="fff").exists()
    assert not IamUser.objects.filter(email="frank@example.com").exists()


def test_a_2001_character_reason_is_refused_as_typed_not_cut_to_2000(
    live_server, browser, carol, deploy_role
):
    page = signed_in(browser, live_server, carol)
    page.goto(f"{live_server.url}/request/?project={deploy_role.project_id}")
    typed = "r" * 2001
    reason = page.get_by_label("Reason")
    reason.fill(typed)
    expect(reason).to_have_value(typed)
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("main")).to_contain_text(
        "Ensure this value has at most 2000 characters (it has 2001)."
    )
    expect(page.get_by_label("Reason")).to_have_value(typed)
    assert not AccessRequest.objects.exists()


# --- Item 5: the demo's sign-in page and mail page ------------------------------


def test_the_demo_sign_in_page_names_the_people_and_mail_goes_to_the_mail_page(
    live_server, browser, carol, settings, tmp_path
):
    settings.DEMO = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    page = browser.new_context().new_page()

    # A mail the demo sends: a password reset for carol.
    page.goto(f"{live_server.url}/accounts/password/reset/")
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_role("button", name="Reset My Password").click()
    expect(page.locator("main")).to_contain_text("sent you an email")

    page.goto(f"{live_server.url}/accounts/login/")
    demo = page.get_by_role("region", name="This is the demo")
    expect(demo).to_contain_text("opsgate-demo-password")
    for who, tries in [
        ("admin@example.com", "admin"),
        ("bob@example.com", "approve"),
        ("carol@example.com", "request"),
    ]:
        row = demo.get_by_role("row").filter(has_text=who)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(re.compile(tries, re.IGNORECASE))
    # How to get a code: the exact command, with absolute paths.
    expect(demo.get_by_role("row").filter(has_text="bob@example.com")).to_contain_text(
        f"{ROOT / 'manage.py'} demo_totp bob@example.com"
    )

    demo.get_by_role("link", name="demo mail page").click()
    page.wait_for_url(f"{live_server.url}/demo/mail/")
    expect(page.locator("main")).to_contain_text("To carol@example.com")
    expect(page.locator("main a[href*='/accounts/password/reset/key/']")).to_have_count(
        1
    )


# --- Item 7: an offboarded person's page shows the end state --------------------


def test_an_offboarded_persons_page_shows_the_end_state_and_no_dead_actions(
    aws_env, live_server, browser, alice, carol, no_service_credentials
):
    sync.iam_user_sync(iam_user_id=carol.pk)
    carol.refresh_from_db()
    arn = carol.arn
    with_password(carol)
    people.person_offboard(iam_user=carol, actor=alice.user)
    page = signed_in(browser, live_server, alice)
    page.goto(f"{live_server.url}/people/{carol.pk}/")
    card = page.locator("main .card").first
    expect(card).to_contain_text("offboarded")
    expect(card).to_contain_text("sign-in disabled")
    expect(card).to_contain_text("being removed: disabled at once")

    # The worker deletes the IAM user: the end state.
    sync.iam_user_sync(iam_user_id=carol.pk)
    page.reload()
    expect(card).to_contain_text("IAM user deleted")
    expect(card).to_contain_text("sign-in disabled")
    expect(card).to_contain_text("no console password can be created")
    for gone in ("has a password", "In sync", "being removed", arn):
        expect(card).not_to_contain_text(gone)
    buttons = page.locator("main").get_by_role("button")
    for action in ("console password", "Retry AWS sync", "invitation"):
        expect(buttons.filter(has_text=action)).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Offboard"))).to_have_count(0)


# --- Item 8: the break-glass page after an error names the approvers ------------


def test_the_break_glass_page_after_an_error_still_names_the_approvers(
    live_server, browser, alice, bob, carol, deploy_role
):
    project = deploy_role.project
    break_glass.break_glass_set(
        actor=alice.user, project=project, allow=True, people=[carol.user]
    )
    page = signed_in(browser, live_server, carol)
    page.goto(f"{live_server.url}/request/?project={project.pk}")
    approvers = page.get_by_text(re.compile(r"^Approvers of payments:"))
    expect(approvers).to_have_text("Approvers of payments: bob")
    glass = page.locator("#break-glass")

    # An empty reason.
    glass.get_by_role("button", name="Break glass").click()
    expect(glass).to_contain_text("Say what the emergency is.")
    expect(approvers).to_have_text("Approvers of payments: bob")

    # The daily cap (two uses a day).
    for _ in range(2):
        used = break_glass.break_glass_activate(
            requester=carol, role=deploy_role, reason="down", actor=carol.user
        )
        access_requests.access_request_revoke(access_request=used, actor=carol.user)
    page.locator("#break-glass").get_by_label("Reason").fill("prod is down again")
    page.locator("#break-glass").get_by_role("button", name="Break glass").click()
    expect(page.locator("#break-glass [role=alert]")).to_contain_text(
        "the most it allows"
    )
    expect(approvers).to_have_text("Approvers of payments: bob")
    assert AccessRequest.objects.count() == 2


# --- Item 9: a TOTP code used twice -----------------------------------------------


def test_a_totp_code_used_twice_says_it_was_used_and_to_wait(
    live_server, browser, bob, payments, settings
):
    # One step of tolerance: the current code stays valid for both sign-ins
    # even when a new 30-second step begins between them (no wait for a fresh
    # step; whether it was used is the question).
    settings.MFA_TOTP_TOLERANCE = 1
    with_password(bob)
    give_totp(bob.user)
    code = format_hotp_value(hotp_value(TOTP_SECRET, int(time.time()) // 30))

    def enter_code():
        page = browser.new_context().new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email").fill("bob@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign In").click()
        page.locator("input[name=code]").fill(code)
        page.get_by_role("button", name="Sign In").click()
        return page

    enter_code().wait_for_url(f"{live_server.url}/")
    second = enter_code()
    expect(second.locator("main")).to_contain_text(
        "This code was already used. Wait for the next code in your authenticator app"
    )
    expect(second.locator("main")).not_to_contain_text("Incorrect code")
    assert second.url.startswith(f"{live_server.url}/accounts/2fa/authenticate")


# --- Item 10: "just now", never "0 minutes" ----------------------------------------


def test_a_request_asked_seconds_ago_says_just_now(
    live_server, browser, alice, bob, carol, deploy_role
):
    request(carol, deploy_role)
    page = signed_in(browser, live_server, bob)
    page.goto(f"{live_server.url}/approvals/")
    card = page.locator("article.request", has_text="carol")
    expect(card).to_contain_text("Asked just now")
    expect(page.locator("main")).not_to_contain_text("0 minutes")

    page = signed_in(browser, live_server, alice)
    page.goto(f"{live_server.url}/dashboard/")
    row = (
        page.locator("section", has_text="Pending requests")
        .get_by_role("row")
        .filter(has_text="carol")
    )
    expect(row).to_contain_text("under a minute")
    expect(page.locator("main")).not_to_contain_text("0 minutes")

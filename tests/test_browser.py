"""The three stories in a real browser: Playwright driving Debian's chromium
against pytest-django's live server. The worker's job is done in the test by
calling provisioning.sync (a real worker is covered by test_worker.py)."""

import os
import re
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import Error as PlaywrightError

from accounts_app.models import AccessRequest, OperationRole, RequestStatus
from accounts_app.services import access_requests
from provisioning import sync
from tests.conftest import ACCOUNT_ID, give_totp, totp_code
from tests.helpers import amazon_linux_image

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# test makes between page actions are safe (nothing else runs here).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[1]
# Screenshots go under var/ so a test run leaves the checkout clean; refresh the
# README's with OPSGATE_SCREENSHOT_DIR=docs/screenshots scripts/test.sh -m browser
SHOTS = ROOT / os.environ.get("OPSGATE_SCREENSHOT_DIR", "var/test/screenshots")
PASSWORD = "browser test password"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


# Chromium reports what a Content-Security-Policy or Permissions-Policy blocks
# on the console; pages also get a `securitypolicyviolation` event, which this
# script (injected by Playwright, so outside the CSP) writes to the console too.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `securitypolicyviolation: ${e.effectiveDirective} blocked ` +
  `${e.blockedURI || "inline code"} at ${e.sourceFile}:${e.lineNumber}`));
"""
POLICY_MESSAGES = ("Content Security Policy", "securitypolicyviolation", "Permissions")


class WatchedBrowser:
    """The session's browser; every context it opens records policy
    violations (see REPORT_VIOLATIONS) in `violations`."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.contexts: list = []
        self.violations: list[str] = []

    def __getattr__(self, name):
        return getattr(self._browser, name)

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self._console)
        self.contexts.append(context)
        return context

    def _console(self, message) -> None:
        if any(text in message.text for text in POLICY_MESSAGES):
            self.violations.append(f"{message.location.get('url')}: {message.text}")

    def settle(self) -> list[str]:
        """Deliver pending console events, close the contexts, and return
        the violations seen."""
        for context in self.contexts:
            for page in context.pages:
                # A page still navigating (a form just submitted) has no
                # context to evaluate in: let it load, then flush.
                page.wait_for_load_state()
                try:
                    page.evaluate("0")
                except PlaywrightError:
                    page.wait_for_load_state()
                    page.evaluate("0")
            context.close()
        self.contexts.clear()
        return self.violations


@pytest.fixture
def browser(browser):
    """Every test fails on a CSP or Permissions-Policy violation: the headers
    are on in tests as in production."""
    watched = WatchedBrowser(browser)
    yield watched
    violations = watched.settle()
    assert not violations, "\n".join(violations)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def with_password(person):
    person.user.set_password(PASSWORD)
    person.user.save()
    return person


def sign_in(
    browser, live_server, email: str, *, totp: bool = False, shot_as="", **context
):
    page = browser.new_context(**context).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    if totp:
        page.locator("input[name=code]").fill(totp_code())
        if shot_as:
            shot(page, shot_as)
        page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/")
    return page


def trust_principals(role_name: str) -> list[str]:
    import boto3

    role = boto3.client("iam").get_role(RoleName=role_name)["Role"]
    statement = role["AssumeRolePolicyDocument"]["Statement"][0]
    principals = statement["Principal"]["AWS"]
    return [principals] if isinstance(principals, str) else principals


def tagged_instance(project: str, name: str) -> str:
    import boto3

    ec2 = boto3.client("ec2")
    image = amazon_linux_image(ec2)
    tags = [{"Key": "Project", "Value": project}, {"Key": "Name", "Value": name}]
    return ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def test_whole_story_admin_adds_person_who_requests_and_approver_approves(
    aws_env, live_server, browser, alice, bob, deploy_role
):
    from playwright.sync_api import expect

    with_password(alice), with_password(bob)
    give_totp(alice.user), give_totp(bob.user)
    instance = tagged_instance("payments", "pay-web-1")

    # The admin adds Frank; he gets an invitation e-mail.
    admin = sign_in(browser, live_server, "alice@example.com", totp=True)
    admin.get_by_role("link", name="People").click()
    admin.get_by_role("link", name="Add a person").click()
    admin.get_by_label("First name").fill("Frank")
    admin.get_by_label("E-mail").fill("frank@example.com")
    admin.get_by_label("IAM user name").fill("frank")
    shot(admin, "admin-add-person")
    admin.get_by_role("button", name="Add person").click()
    expect(admin.get_by_role("status").first).to_contain_text("Added frank")
    (invitation,) = [m for m in mail.outbox if m.to == ["frank@example.com"]]
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+", invitation.body)

    # Frank sets his password from the link, signs in and asks for access.
    frank = browser.new_context().new_page()
    frank.goto(link.group(0))
    shot(frank, "set-password")
    frank.locator("input[name=password1]").fill(PASSWORD)
    frank.locator("input[name=password2]").fill(PASSWORD)
    expect(frank.locator("h1")).to_have_text("Set your password for opsgate")
    frank.get_by_role("button", name="Set password").click()
    expect(frank.locator("main")).to_contain_text("Your password is set")
    expect(frank.get_by_role("link", name="Sign in to opsgate")).to_be_visible()
    shot(frank, "password-set")
    frank = sign_in(browser, live_server, "frank@example.com")
    frank.get_by_role("link", name="Request access").first.click()
    frank.get_by_label("Project").select_option(label="payments")
    frank.get_by_role("button", name="Next").click()
    frank.get_by_label("Run as (OS user)").select_option(
        label="deploy (role payments-deploy)"
    )
    frank.get_by_label("Reason").fill("CHG-1234: deploy release 2.3")
    frank.get_by_label("For how long").select_option(label="8 hours")
    shot(frank, "request-access")
    frank.get_by_role("button", name="Send request").click()
    expect(frank.locator("[data-request-id] [data-badge]").first).to_have_text(
        "Waiting for approval"
    )

    # Bob signs in with his TOTP code and approves.
    approver = sign_in(
        browser, live_server, "bob@example.com", totp=True, shot_as="sign-in-totp"
    )
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator("article.request", has_text="frank")
    expect(card).to_contain_text("CHG-1234: deploy release 2.3")
    shot(approver, "approvals")
    card.get_by_label("Comment").fill("ok for the release window")
    card.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status").first).to_contain_text("Approved frank")

    # Frank's page reloads itself when his request turns into a grant (a
    # reload by the test would race it), then moves from "provisioning" to
    # "active" without a reload once the worker has converged the role.
    badge = frank.locator("article.grant [data-badge]")
    expect(badge).to_have_text("Provisioning", timeout=15_000)
    sync.role_sync(role_id=deploy_role.pk)
    expect(badge).to_have_text("Active", timeout=15_000)
    arn = f"arn:aws:iam::{ACCOUNT_ID}:role/opsgate/payments-deploy"
    grant = frank.locator("article.grant")
    expect(grant).to_contain_text(arn)
    expect(grant).to_contain_text(f"mfa_serial = arn:aws:iam::{ACCOUNT_ID}:mfa/frank")
    expect(grant).to_contain_text("role_session_name = frank")
    expect(grant).to_contain_text(f"aws ssm start-session --target {instance}")
    expect(grant.locator("table")).to_contain_text("pay-web-1")
    switch = grant.get_by_role("link", name=re.compile("Switch Role"))
    expect(switch).to_have_attribute(
        "href", re.compile(r"roleName=opsgate/payments-deploy")
    )
    shot(frank, "my-access")
    frank.set_viewport_size(PHONE)
    shot(frank, "my-access-phone")

    # AWS: the role's trust lists Frank's IAM user.
    assert trust_principals("payments-deploy") == [
        f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/frank"
    ]

    # The admin's pages after the story, for the README.
    admin.goto(f"{live_server.url}/people/")
    shot(admin, "people")
    admin.goto(f"{live_server.url}/projects/{deploy_role.project_id}/")
    expect(admin.locator("main")).to_contain_text("characters used")
    shot(admin, "project")
    admin.goto(f"{live_server.url}/audit/")
    shot(admin, "audit")


def test_rejection_shows_on_the_requesters_page(
    aws_env, live_server, browser, bob, carol, deploy_role
):
    from playwright.sync_api import expect

    with_password(bob), with_password(carol)
    give_totp(bob.user)
    access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="curious",
        duration_hours=8,
        actor=carol.user,
    )
    approver = sign_in(browser, live_server, "bob@example.com", totp=True)
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator("article.request", has_text="carol")
    dialogs = []
    approver.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    card.get_by_role("button", name="Reject").click()  # no reason: refused
    card = approver.locator("article.request", has_text="carol")
    expect(card).to_contain_text("Say why you reject it")
    assert AccessRequest.objects.get().status == RequestStatus.PENDING
    card.get_by_label(re.compile("Comment")).fill("use the readonly role")
    card.get_by_role("button", name="Reject").click()
    expect(approver.get_by_role("status").first).to_contain_text("Rejected carol")
    requester = sign_in(browser, live_server, "carol@example.com")
    row = requester.locator("tr[data-request-id]")
    expect(row.locator("[data-badge]")).to_have_text("Rejected")
    expect(row).to_contain_text("Rejected by bob: “use the readonly role”")
    assert AccessRequest.objects.get().status == RequestStatus.REJECTED
    assert dialogs and dialogs[0].startswith("Reject carol's request")


def test_requester_cancels_a_pending_request(live_server, browser, carol, deploy_role):
    from playwright.sync_api import expect

    with_password(carol)
    access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="oops",
        duration_hours=8,
        actor=carol.user,
    )
    page = sign_in(browser, live_server, "carol@example.com")
    page.get_by_role("button", name=re.compile("Cancel the request")).click()
    expect(page.locator("tr[data-request-id] [data-badge]")).to_have_text("Cancelled")
    assert AccessRequest.objects.get().status == RequestStatus.CANCELLED


def test_bad_input_shows_a_field_error_and_writes_nothing(
    live_server, browser, carol, deploy_role
):
    from playwright.sync_api import expect

    with_password(carol)
    page = sign_in(browser, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/request/?project={deploy_role.project_id}")
    page.get_by_label("Reason").fill("   ")
    page.get_by_role("button", name="Send request").click()
    reason = page.get_by_label("Reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator("main")).to_contain_text("Say why you need this access.")
    shot(page, "form-error")
    assert AccessRequest.objects.count() == 0
    assert OperationRole.objects.get().desired_version == deploy_role.desired_version


def test_the_watch_sees_inline_code_the_policy_blocks(live_server, browser, carol):
    """Positive control: code injected into a page breaks the policy, and the
    watch (which fails every browser test) records it."""
    with_password(carol)
    page = sign_in(browser, live_server, "carol@example.com")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "document.title = 'inline ran'";
          document.body.append(script);
          document.querySelector("main").setAttribute("style", "color: red");
        }"""
    )
    assert page.title() != "inline ran"
    seen = browser.settle()
    assert any("script-src" in v for v in seen), seen
    assert any("style-src" in v for v in seen), seen
    browser.violations.clear()


def test_admin_and_allauth_pages_work_under_the_policy(
    aws_env, live_server, browser, alice, carol, deploy_role
):
    """Setting up TOTP (the QR code, the code), recovery codes,
    password change and reset, signing out, the portal's staff pages and every
    list and add form of the Django admin, with the CSP on."""
    from django.contrib import admin
    from django.urls import reverse
    from playwright.sync_api import expect

    with_password(alice)
    url = live_server.url
    page = browser.new_context().new_page()
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # An admin without TOTP: straight to the QR code and a code (they have
    # just signed in: no password again), then the recovery codes.
    page.wait_for_url(re.compile(r"/accounts/2fa/totp/activate/"))
    qr = page.locator("img[src^='data:image/svg+xml']")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.locator("#authenticator_secret").input_value()
    page.locator("input[name=code]").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile(r"/accounts/2fa/recovery-codes/"))
    expect(page.locator("main")).to_contain_text("recovery codes")

    pages = [
        "/accounts/2fa/",
        "/accounts/password/change/",
        "/",
        "/request/",
        "/dashboard/",
        "/drift/",
        "/people/",
        "/people/add",
        f"/people/{carol.pk}/",
        "/projects/",
        f"/projects/{deploy_role.project_id}/",
        f"/projects/{deploy_role.project_id}/settings",
        "/audit/",
        "/admin/",
    ]
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages.append(reverse(f"{name}_changelist"))
    for path in pages:
        response = page.goto(url + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]

    # The admin's scripts run: selecting all rows updates the counter.
    page.goto(url + reverse("admin:auth_user_changelist"))
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_have_text(
        re.compile(r"^(\d+) of \1 selected")
    )
    page.goto(url + reverse("admin:auth_user_change", args=[carol.user.pk]))
    expect(page.locator("#id_last_login_0")).to_be_visible()
    page.get_by_role("link", name="Today").first.click()  # DateTimeShortcuts.js
    expect(page.locator("#id_last_login_0")).not_to_have_value("")

    # Signing out, then a password reset.
    page.goto(f"{url}/accounts/logout/")
    page.locator("main").get_by_role("button", name="Sign Out").click()
    page.goto(f"{url}/accounts/password/reset/")
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_role("button", name="Reset My Password").click()
    expect(page.locator("main")).to_contain_text("sent you an email")

"""Issue 25 in a real browser (the fixtures of test_browser.py: Debian's
chromium, the CSP watch): carol's grant is Not ready because her IAM user has
no MFA device, the page says so with the console link; she registers one,
presses Check again, and the grant reaches Ready in My access. The worker's
check runs in this process as the page asks for it (provisioning_runs)."""

import os
import re

import boto3
import pytest

from accounts_app.models import AccessRequest, ReadinessState
from accounts_app.services import access_requests
from provisioning import sync
from tests import test_browser
from tests.helpers import run_instance
from tests.readiness_sim import deploy_documents, give_os_users, real_ssm, register_mfa
from tests.test_browser import shot, sign_in, with_password
from tests.test_browser_portal import axe_problems

browser = test_browser.browser
browser_type_launch_args = test_browser.browser_type_launch_args

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_grant_reaches_ready_in_my_access(
    aws_env,
    live_server,
    browser,
    bob,
    carol,
    deploy_role,
    readiness_on,
    provisioning_runs,
    monkeypatch,
):
    from playwright.sync_api import expect

    real_ssm(monkeypatch)
    deploy_documents()
    ec2 = boto3.client("ec2", region_name="us-east-1")
    instance = run_instance(ec2, "payments", "pay-web-1")
    give_os_users(ec2, instance, "deploy")
    with_password(carol)
    sync.account_baseline_sync(account_id=deploy_role.account_id)
    sync.iam_user_sync(iam_user_id=carol.pk)
    grant = access_requests.access_request_approve(
        access_request=access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="INC-9 restart the payment workers",
            duration_hours=8,
            actor=carol.user,
        ),
        approver=bob.user,
    )
    # The worker converges the role; the readiness check follows at once.
    sync.role_sync(role_id=deploy_role.pk)
    assert AccessRequest.objects.get(pk=grant.pk).readiness_state == "not_ready"

    page = sign_in(browser, live_server, "carol@example.com")
    card = page.locator("article.grant", has_text="payments")
    readiness = card.locator("[data-readiness]")
    expect(readiness).to_have_attribute("data-readiness", "not_ready")
    expect(readiness).to_contain_text("Not ready")
    expect(readiness).to_contain_text("Your IAM user carol has no MFA device")
    expect(readiness).to_contain_text("name the virtual device exactly carol")
    link = readiness.get_by_role("link", name="Open the AWS console page")
    expect(link).to_have_attribute("href", re.compile(r"signin\.aws\.amazon\.com"))
    assert axe_problems(page) == []
    shot(page, "readiness-not-ready")

    register_mfa("carol")
    readiness.get_by_role("button", name="Check again").click()

    ready = page.locator("article.grant", has_text="payments").locator(
        "[data-readiness]"
    )
    expect(ready).to_have_attribute("data-readiness", "ready")
    expect(ready).to_contain_text("nothing stands in your way")
    expect(ready.locator(f"tr[data-instance='{instance}']")).to_contain_text(
        "The OS user deploy exists."
    )
    assert axe_problems(page) == []
    shot(page, "readiness-ready")
    after = AccessRequest.objects.get(pk=grant.pk)
    assert after.readiness_state == ReadinessState.READY and after.ready_at

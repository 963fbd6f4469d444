"""Issue 12 in a real browser, under the CSP watch of tests/test_browser.py:
the API tokens page (create, shown once, revoke), the page that confirms an
`opsgate login`, and the API docs page (swagger-ui from local files)."""

import re

import pytest

from accounts_app.models import ApiToken, DeviceAuthorization
from accounts_app.services import tokens
from tests import test_browser
from tests.test_browser import shot, sign_in, with_password

# The CSP-watching browser and Debian's chromium of tests/test_browser.py.
browser = test_browser.browser
browser_type_launch_args = test_browser.browser_type_launch_args

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_token_page_creates_a_token_shown_once_and_revokes_it(
    live_server, browser, carol
):
    from playwright.sync_api import expect

    with_password(carol)
    page = sign_in(browser, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/tokens/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Read").check()
    page.get_by_label("Request access").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert tokens.token_authenticate(secret).user == carol.user
    shot(page, "api-token-created")
    page.goto(f"{live_server.url}/tokens/")
    expect(page.locator("main")).not_to_contain_text(secret)
    page.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.locator("main")).to_contain_text("revoked")
    assert tokens.token_authenticate(secret) is None
    assert ApiToken.objects.get().revoked_at is not None

    # A new password ends every token; the page says so and revokes all at once.
    expect(page.locator("main")).to_contain_text("revokes all your tokens")
    for name in ("script", "ci"):
        tokens.token_create(
            owner=carol.user, name=name, scopes=["read"], days=1, actor=carol.user
        )
    page.goto(f"{live_server.url}/tokens/")
    page.get_by_role("button", name="Revoke all my tokens").click()
    expect(page.get_by_role("status").first).to_contain_text("2 tokens revoked")
    assert not ApiToken.objects.filter(revoked_at__isnull=True).exists()


def test_device_page_confirms_a_cli_login(live_server, browser, carol):
    from playwright.sync_api import expect

    with_password(carol)
    device_code, user_code = tokens.device_authorization_start(client_name="laptop")
    page = sign_in(browser, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/device/?user_code={user_code}")
    expect(page.locator("main")).to_contain_text(user_code)
    shot(page, "api-device-login")
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.locator("main")).to_contain_text("Signed in on the command line")
    assert DeviceAuthorization.objects.get().approved_by == carol.user
    status, secret = tokens.device_authorization_poll(device_code)
    assert status == "ok" and tokens.token_authenticate(secret).user == carol.user


def test_api_docs_page_renders_under_the_policy(live_server, browser):
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(
        page.get_by_text(re.compile("/api/v1/requests/\\{pk\\}/status"))
    ).to_be_visible()
    shot(page, "api-docs")

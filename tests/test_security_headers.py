"""Content-Security-Policy and Permissions-Policy on every response, in tests
as in production (issue 9); the browser tests fail on any violation."""

import re

import pytest
from django.urls import reverse

from tests.test_deploy_settings import PRODUCTION, ROOT, manage

pytestmark = pytest.mark.django_db

CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
DENIED = {
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
}


def directives(header: str) -> dict[str, list[str]]:
    parts = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in parts}


def permissions(header: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in header.split(","))


@pytest.fixture
def responses(client, login, alice, carol, deploy_role):
    anonymous = [
        client.get(reverse("account_login")),
        client.get("/no-such-page/"),
        client.get(reverse("account_reset_password")),
    ]
    requester = login(carol)
    as_carol = [
        requester.get(reverse("home")),
        requester.get(reverse("request_status") + "?ids=1"),
        requester.post(reverse("request_cancel", args=[999])),
    ]
    requester.logout()
    staff = login(alice)
    return anonymous + as_carol + [staff.get("/admin/"), staff.get(reverse("people"))]


def test_every_response_carries_the_content_security_policy(responses):
    assert {r.status_code for r in responses} >= {200, 404}
    for response in responses:
        assert directives(response["Content-Security-Policy"]) == CSP, response


def test_every_response_denies_the_browser_features_opsgate_does_not_use(
    responses,
):
    for response in responses:
        policy = permissions(response["Permissions-Policy"])
        assert policy == {feature: "()" for feature in DENIED}, response


def test_the_sso_providers_origin_may_receive_the_sign_in_form():
    """The SSO button posts to opsgate, which redirects the form to the
    identity provider: form-action must allow its origin (and only that)."""
    env = {
        **PRODUCTION,
        "OPSGATE_OIDC_SERVER_URL": "https://idp.example.com:8443/realms/ops",
        "OPSGATE_OIDC_CLIENT_ID": "opsgate",
        "OPSGATE_OIDC_CLIENT_SECRET": "s3cret",
    }
    code = (
        "from django.conf import settings; "
        "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action'])"
    )
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.splitlines()[-1] == "[\"'self'\", 'https://idp.example.com:8443']"
    )


INLINE = re.compile(
    r'<script(?![^>]*\b(?:src=|type="application/json"))[^>]*>\s*\S'
    r"|<style\b|\sstyle=|\son[a-z]+=|javascript:",
    re.IGNORECASE,
)


def test_templates_have_no_inline_script_style_or_event_handler():
    """What the CSP would block (JSON data blocks are not run, so allowed);
    the browser tests catch the rest."""
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for path in (ROOT / "templates").rglob("*.html")
        for match in INLINE.finditer(path.read_text())
    ]
    assert found == []

"""Optional OpenID Connect sign-on, against a small fake identity provider:
only people an admin added get in, matched by the verified e-mail, and TOTP
still follows for approvers."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from tests.conftest import give_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp():
    """Discovery, token and userinfo endpoints; `idp.email` is who signs in."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, data):
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            base = f"http://127.0.0.1:{server.server_port}"
            if self.path.startswith("/.well-known/openid-configuration"):
                self._json(
                    {
                        "issuer": base,
                        "authorization_endpoint": f"{base}/authorize",
                        "token_endpoint": f"{base}/token",
                        "userinfo_endpoint": f"{base}/userinfo",
                        "jwks_uri": f"{base}/jwks",
                    }
                )
            elif self.path.startswith("/userinfo"):
                self._json(
                    {"sub": server.email, "email": server.email, "email_verified": True}
                )
            else:
                self.send_error(404)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._json({"access_token": "token", "token_type": "Bearer"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.email = ""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def sso(idp, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Corp SSO",
                    "client_id": "opsgate",
                    "secret": "s3cret",
                    "settings": {"server_url": f"http://127.0.0.1:{idp.server_port}"},
                }
            ]
        }
    }
    return idp


def sign_on(client, idp, email):
    idp.email = email
    start = client.post("/accounts/oidc/sso/login/")
    assert start.status_code == 302
    authorize = urlparse(start["Location"])
    assert authorize.path == "/authorize"
    query = parse_qs(authorize.query)
    assert query["client_id"] == ["opsgate"]
    return client.get(
        "/accounts/oidc/sso/login/callback/",
        {"code": "abc", "state": query["state"][0]},
    )


def test_login_page_offers_sso_only_when_configured(client, settings, idp):
    assert b"/accounts/oidc/sso/login/" not in client.get("/accounts/login/").content
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Corp SSO",
                    "client_id": "x",
                    "secret": "y",
                    "settings": {"server_url": f"http://127.0.0.1:{idp.server_port}"},
                }
            ]
        }
    }
    page = client.get("/accounts/login/").content
    assert b"/accounts/oidc/sso/login/" in page and b"Corp SSO" in page


def test_a_person_an_admin_added_signs_on_by_their_verified_email(client, sso, carol):
    sign_on(client, sso, "carol@example.com")
    assert client.session["_auth_user_id"] == str(carol.user.pk)


def test_someone_nobody_added_cannot_sign_on(client, sso, carol):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.count()
    response = sign_on(client, sso, "eve@example.com")
    assert b"Ask an opsgate admin to add you" in response.content
    assert "_auth_user_id" not in client.session
    assert get_user_model().objects.count() == users


def test_an_approver_still_enters_their_totp_code_after_sso(client, sso, bob, payments):
    give_totp(bob.user)
    response = sign_on(client, sso, "bob@example.com")
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session


def test_sso_with_an_address_the_idp_verified_lets_a_new_approver_set_up_totp(
    client, sso, bob, payments
):
    """Issue 21: the identity provider vouches for the address, so allauth's
    "verify your e-mail first" no longer blocks TOTP set-up."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(
        user=bob.user, email="bob@example.com", verified=False, primary=False
    )
    sign_on(client, sso, "bob@example.com")
    assert client.session["_auth_user_id"] == str(bob.user.pk)
    (address,) = EmailAddress.objects.filter(user=bob.user)
    assert address.verified and address.primary
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200, page.get("Location")

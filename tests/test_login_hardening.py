"""Issue 21 item 7, the sign-in and token parts: device logins expire at
redemption too, user codes cannot be guessed without limit, rate limits see
the client behind a trusted proxy (and only a trusted one), the device page
says what the token may do and until when, no console password for the
offboarded, and a new password (or one button) ends every API token."""

import re

import pytest
from allauth.account.adapter import get_adapter
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts_app.client_ip import client_ip
from accounts_app.models import ApiToken, AuditEvent, DeviceAuthorization
from accounts_app.services import people, tokens
from tests.test_deploy_settings import PRODUCTION, manage

pytestmark = pytest.mark.django_db

PASSWORD = "a good password here"


def _token(person, name="laptop"):
    return tokens.token_create(
        owner=person.user, name=name, scopes=["read"], days=7, actor=person.user
    )


# --- Device login: expiry at redemption, guessing user codes ----------------------


def test_a_confirmed_device_login_collected_after_it_expired_gives_no_token(carol):
    device_code, user_code = tokens.device_authorization_start(client_name="laptop")
    tokens.device_authorization_approve(user_code=user_code, user=carol.user)
    DeviceAuthorization.objects.update(
        expires_at=timezone.now() - timezone.timedelta(hours=3)
    )
    assert tokens.device_authorization_poll(device_code) == ("expired", None)
    assert not ApiToken.objects.exists()


def test_five_wrong_user_codes_lock_the_device_page_for_that_person(login, carol, dave):
    device_code, user_code = tokens.device_authorization_start()
    page = login(carol)
    for guess in ("AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "EEEE-EEEE"):
        wrong = page.get("/device/", {"user_code": guess})
        assert "No login is waiting for this code" in wrong.content.decode()
    # The right code is no longer even looked up, on the page or by POST.
    locked = page.get("/device/", {"user_code": user_code})
    assert locked.context["pending"] is None
    assert "Too many wrong codes" in locked.content.decode()
    page.post("/device/", {"user_code": user_code})
    assert DeviceAuthorization.objects.get().approved_at is None
    assert tokens.device_authorization_poll(device_code) == ("pending", None)
    # Another person is not locked out by carol's guesses.
    other = Client()
    other.force_login(dave.user)
    assert other.get("/device/", {"user_code": user_code}).context["pending"]


def test_the_device_page_lists_the_scopes_and_the_expiry_of_the_token(
    login, carol, bob, payments
):
    _, user_code = tokens.device_authorization_start()
    page = login(carol).get("/device/", {"user_code": user_code})
    text = page.content.decode()
    assert "<strong>Read</strong>, <strong>Request access</strong>." in text
    assert "Approve and reject" not in text
    expires = timezone.now() + timezone.timedelta(days=tokens.DEVICE_TOKEN_DAYS)
    assert f"expires after {tokens.DEVICE_TOKEN_DAYS} days" in text
    assert expires.strftime("%Y") in text and expires.strftime("%b") in text

    approver = login(bob).get("/device/", {"user_code": user_code})
    assert "<strong>Approve and reject</strong>" in approver.content.decode()


# --- The client's address behind a proxy ------------------------------------------


def _request(remote, forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.fixture
def behind_proxy(settings):
    settings.OPSGATE = {
        **settings.OPSGATE,
        "TRUSTED_PROXIES": ["10.0.0.0/8", "fd00::/8"],
    }


def test_forwarded_addresses_are_ignored_unless_the_peer_is_a_trusted_proxy(
    settings,
):
    assert client_ip(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    settings.OPSGATE = {**settings.OPSGATE, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    # A client that sends its own X-Forwarded-For is not a proxy.
    assert client_ip(_request("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_client_is_the_last_untrusted_hop(behind_proxy):
    assert client_ip(_request("10.0.0.2", "198.51.100.7")) == "198.51.100.7"
    # Whatever the client wrote on the left is not believed.
    spoofed = _request("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.1.1.1")
    assert client_ip(spoofed) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "junk, 198.51.100.7")) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "198.51.100.7, junk")) == "10.0.0.2"
    assert client_ip(_request("10.0.0.2")) == "10.0.0.2"
    assert client_ip(_request("fd00::1", "2001:db8::5")) == "2001:db8::5"


def test_sign_in_rate_limits_key_on_the_client_behind_a_trusted_proxy(behind_proxy):
    adapter = get_adapter()
    assert adapter.get_client_ip(_request("10.0.0.2", "198.51.100.7")) == (
        "198.51.100.7"
    )
    assert adapter.get_client_ip(_request("203.0.113.9", "1.1.1.1")) == "203.0.113.9"


def _start(client, forwarded):
    return client.post(
        "/api/v1/device/start",
        "{}",
        content_type="application/json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_device_start_limit_is_per_client_behind_a_trusted_proxy(behind_proxy):
    client = Client()
    statuses = [_start(client, "198.51.100.1").status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    # Another client behind the same proxy has its own bucket.
    assert _start(client, "198.51.100.2").status_code == 200


def test_without_trusted_proxies_a_forged_header_buys_no_new_bucket():
    client = Client()
    statuses = [_start(client, f"198.51.100.{n}").status_code for n in range(1, 12)]
    assert statuses[10] == 429


def test_a_trusted_proxy_that_is_not_an_address_stops_start_up():
    env = {**PRODUCTION, "OPSGATE_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "OPSGATE_TRUSTED_PROXIES: 'proxy.internal'" in result.stderr


# --- Console password for the offboarded ------------------------------------------


def test_the_console_password_button_refuses_an_offboarded_person(
    login, alice, carol, monkeypatch
):
    from provisioning import direct

    carol.arn = f"arn:aws:iam::123456789012:user/opsgate/{carol.name}"
    carol.save(update_fields=["arn"])
    people.person_offboard(iam_user=carol, actor=alice.user)

    def no_aws(*args, **kwargs):
        raise AssertionError("no AWS call for an offboarded person")

    monkeypatch.setattr(direct.aws, "client", no_aws)
    # The package's own callers (account_identity, caller_account_id) look
    # the client up in provisioning.aws.clients.
    monkeypatch.setattr(direct.aws.clients, "client", no_aws)
    web = login(alice)
    response = web.post(reverse("person_console_password", args=[carol.pk]))
    assert response.status_code == 302
    page = web.get(reverse("person_detail", args=[carol.pk]))
    text = page.content.decode()
    assert "carol is offboarded" in text
    assert "Create a one-time console password" not in text
    assert not AuditEvent.objects.filter(action="person.console_password").exists()


# --- Tokens end with the password -------------------------------------------------


def _signed_in(client, person):
    person.user.set_password(PASSWORD)
    person.user.save()
    client.post(
        reverse("account_login"), {"login": person.user.email, "password": PASSWORD}
    )
    return client


def test_changing_the_password_revokes_every_api_token_and_says_so(client, carol):
    _, first = _token(carol, "laptop")
    _, second = _token(carol, "script")
    _signed_in(client, carol)
    done = client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": "another good password",
            "password2": "another good password",
        },
        follow=True,
    )
    assert tokens.token_authenticate(first) is None
    assert tokens.token_authenticate(second) is None
    assert "ended your 2 API tokens" in done.content.decode()
    reasons = AuditEvent.objects.filter(action="token.revoke").values_list(
        "after__reason", flat=True
    )
    assert list(reasons) == ["password changed", "password changed"]


def test_resetting_the_password_by_mail_revokes_every_api_token(client, carol):
    _, secret = _token(carol)
    client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    (message,) = mail.outbox
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", message.body
    )
    page = client.get(link[1], follow=True)
    client.post(
        page.redirect_chain[-1][0],
        {"password1": "another good password", "password2": "another good password"},
    )
    assert carol.user.__class__.objects.get(pk=carol.user.pk).check_password(
        "another good password"
    )
    assert tokens.token_authenticate(secret) is None


def test_the_tokens_page_says_a_new_password_ends_them_and_revokes_all(
    login, carol, dave
):
    _token(carol, "laptop"), _token(carol, "script")
    _, daves = _token(dave)
    web = login(carol)
    page = web.get(reverse("tokens")).content.decode()
    assert "Changing or resetting your password revokes all your tokens" in page
    assert "Revoke all my tokens" in page
    done = web.post(reverse("tokens_revoke_all"), follow=True).content.decode()
    assert "2 tokens revoked" in done
    assert not ApiToken.objects.filter(user=carol.user, revoked_at__isnull=True)
    assert tokens.token_authenticate(daves) is not None
    assert (
        AuditEvent.objects.filter(
            action="token.revoke", actor=carol.user, after__reason="revoke all"
        ).count()
        == 2
    )
    assert "Revoke all my tokens" not in web.get(reverse("tokens")).content.decode()

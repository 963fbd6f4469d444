"""Personal access tokens: stored hashed and shown once, expiry required (at
most 90 days), scopes, own and staff revocation, audited, dead after
offboarding; and the device login that hands one to the CLI."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts_app.models import ApiToken, AuditEvent, DeviceAuthorization
from accounts_app.services import people, tokens

pytestmark = pytest.mark.django_db

ALL = ["read", "request", "approve"]


def _token(person, scopes=("read",), days=30):
    return tokens.token_create(
        owner=person.user,
        name="laptop",
        scopes=list(scopes),
        days=days,
        actor=person.user,
    )


def test_token_is_stored_hashed_and_authenticates(carol):
    token, secret = _token(carol)
    assert secret.startswith("ogp_") and len(secret) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(
        list(ApiToken.objects.values_list("digest", "prefix", "name"))
    ).replace(stored.prefix, "")
    assert tokens.token_authenticate(secret).pk == token.pk
    assert tokens.token_authenticate(secret + "x") is None
    assert tokens.token_authenticate("") is None
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == carol.user and event.after["scopes"] == ["read"]
    assert secret not in str(event.after)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": None}, "days"),
        ({"days": 0}, "days"),
        ({"days": 91}, "days"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["admin"]}, "scopes"),
        ({"name": "  "}, "name"),
    ],
)
def test_bad_token_input_is_refused_with_a_field_message(carol, kwargs, field):
    args = {"owner": carol.user, "name": "x", "scopes": ["read"], "days": 30}
    args.update(kwargs)
    with pytest.raises(ValidationError) as exc:
        tokens.token_create(actor=carol.user, **args)
    assert field in exc.value.message_dict
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="token.create").exists()


def test_expired_token_stops_working(carol):
    token, secret = _token(carol, days=1)
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tokens.token_authenticate(secret) is None


def test_owner_and_staff_revoke_others_cannot(carol, dave, alice):
    token, secret = _token(carol)
    with pytest.raises(PermissionDenied):
        tokens.token_revoke(token=token, actor=dave.user)
    tokens.token_revoke(token=token, actor=alice.user)
    assert tokens.token_authenticate(secret) is None
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.actor == alice.user and event.after["revoked"] is True


def test_offboarding_revokes_the_persons_tokens(carol, alice):
    _, secret = _token(carol)
    people.person_offboard(iam_user=carol, actor=alice.user)
    assert tokens.token_authenticate(secret) is None
    assert ApiToken.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(
        action="token.revoke", actor=alice.user, after__reason="offboarded"
    ).exists()


def test_a_re_enabled_login_of_an_offboarded_person_gets_no_api(carol, alice):
    token, secret = _token(carol)
    people.person_offboard(iam_user=carol, actor=alice.user)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    carol.user.is_active = True
    carol.user.save()
    assert tokens.token_authenticate(secret) is None


# --- Pages ---------------------------------------------------------------------


def test_token_page_creates_shows_once_and_lists_only_mine(login, carol, dave):
    _token(dave)
    client = login(carol)
    response = client.post(
        "/tokens/", {"name": "laptop", "scopes": ["read", "request"], "days": "30"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=carol.user)
    secret = response.context["secret"]
    assert tokens.token_authenticate(secret).pk == token.pk
    assert response["Cache-Control"] == "no-store"
    page = client.get("/tokens/")
    assert secret not in page.content.decode()
    assert [t.pk for t in page.context["tokens"]] == [token.pk]
    # ?all=1 is for staff only
    assert [t.pk for t in client.get("/tokens/?all=1").context["tokens"]] == [token.pk]


def test_token_page_shows_the_new_secret_with_a_copy_button(login, carol):
    response = login(carol).post(
        "/tokens/", {"name": "laptop", "scopes": ["read"], "days": "30"}
    )
    secret = response.context["secret"]
    assert (
        f'<pre id="new-token"><code class="secret">{secret}</code></pre>'
        '<button type="button" class="copy secondary" data-copy="new-token">Copy'
    ) in response.content.decode()


def test_token_states_read_as_the_request_badges_do(login, carol):
    live, _ = _token(carol)
    gone, _ = _token(carol)
    old, _ = _token(carol)
    tokens.token_revoke(token=gone, actor=carol.user)
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now())
    page = login(carol).get("/tokens/").content.decode()
    for state in ("Active", "Revoked", "Expired"):
        assert f'<span class="badge badge-{state.lower()}">{state}</span>' in page
    assert "badge-rejected" not in page  # an expired token was not refused


def test_token_page_refuses_more_than_90_days(login, carol):
    response = login(carol).post(
        "/tokens/", {"name": "laptop", "scopes": ["read"], "days": "91"}
    )
    assert "days" in response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_staff_see_and_revoke_everyones_tokens(login, carol, alice):
    token, secret = _token(carol)
    client = login(alice)
    assert token in client.get("/tokens/?all=1").context["tokens"]
    client.post(f"/tokens/{token.pk}/revoke", {"all": "1"})
    assert tokens.token_authenticate(secret) is None


def test_nobody_revokes_anothers_token_from_the_page(login, carol, dave):
    token, secret = _token(carol)
    assert login(dave).post(f"/tokens/{token.pk}/revoke").status_code == 404
    assert tokens.token_authenticate(secret) is not None


# --- Device login -----------------------------------------------------------------


def test_device_login_gives_the_cli_one_token_once(login, carol):
    device_code, user_code = tokens.device_authorization_start(client_name="laptop")
    assert tokens.device_authorization_poll(device_code) == ("pending", None)
    client = login(carol)
    page = client.get("/device/", {"user_code": user_code.lower().replace("-", "")})
    assert page.context["pending"].user_code == user_code
    client.post("/device/", {"user_code": user_code})
    status, secret = tokens.device_authorization_poll(device_code)
    assert status == "ok"
    token = tokens.token_authenticate(secret)
    assert token.user == carol.user and token.scopes == ["read", "request"]
    assert tokens.device_authorization_poll(device_code) == ("used", None)
    assert AuditEvent.objects.filter(
        action="token.device_approve", actor=carol.user
    ).exists()


def test_device_code_expires(carol):
    device_code, user_code = tokens.device_authorization_start()
    DeviceAuthorization.objects.update(expires_at=timezone.now())
    assert tokens.device_authorization_poll(device_code) == ("expired", None)
    with pytest.raises(ValidationError):
        tokens.device_authorization_approve(user_code=user_code, user=carol.user)
    assert tokens.device_authorization_poll("nonsense") == ("expired", None)

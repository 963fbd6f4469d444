"""Sign-in: e-mail and password, TOTP mandatory for admins and approvers,
failed logins rate-limited, no self sign-up."""

import pytest
from django.urls import reverse

from tests.conftest import give_totp, totp_code

pytestmark = pytest.mark.django_db
PASSWORD = "a long demo password"


def _with_password(person):
    person.user.set_password(PASSWORD)
    person.user.save()
    return person


@pytest.mark.parametrize("path", ["/", "/approvals/", "/request/"])
def test_an_approver_without_totp_is_sent_to_mfa_setup_first(
    client, bob, payments, path
):
    client.force_login(bob.user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


@pytest.mark.parametrize(
    "path", ["/people/", "/audit/", "/admin/", "/dashboard/", "/drift/"]
)
def test_an_admin_without_totp_is_sent_to_mfa_setup_first(client, alice, path):
    client.force_login(alice.user)
    response = client.get(path)
    assert response["Location"] == reverse("mfa_activate_totp")


def test_approver_sets_up_totp_then_reaches_the_queue(client, bob, payments):
    _with_password(bob)
    client.post(
        reverse("account_login"), {"login": "bob@example.com", "password": PASSWORD}
    )
    assert client.get("/approvals/")["Location"] == reverse("mfa_activate_totp")
    # Just signed in: no password again before adding an authenticator
    # (tests/test_views_portal.py: later, allauth asks for it).
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    secret = client.session["mfa.totp.secret"]
    client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert client.get("/approvals/").status_code == 200


def test_sign_out_stays_reachable_without_totp(client, bob, payments):
    client.force_login(bob.user)
    assert client.post(reverse("account_logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_approver_with_totp_reaches_the_queue(client, bob, payments):
    give_totp(bob.user)
    client.force_login(bob.user)
    assert client.get("/approvals/").status_code == 200


def test_a_requester_without_totp_can_use_the_portal(client, carol):
    client.force_login(carol.user)
    assert client.get("/").status_code == 200


def test_sign_in_with_password_then_totp_code(client, bob, payments):
    _with_password(bob)
    give_totp(bob.user)
    response = client.post(
        reverse("account_login"), {"login": "bob@example.com", "password": PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session
    client.post(reverse("mfa_authenticate"), {"code": totp_code()})
    assert client.session["_auth_user_id"] == str(bob.user.pk)
    assert client.get("/approvals/").status_code == 200


def test_a_code_used_twice_says_it_was_used_not_incorrect(client, bob, payments):
    _with_password(bob)
    give_totp(bob.user)
    code = totp_code()
    for _attempt in range(2):
        client.logout()
        client.post(
            reverse("account_login"),
            {"login": "bob@example.com", "password": PASSWORD},
        )
        answer = client.post(reverse("mfa_authenticate"), {"code": code})
    text = answer.content.decode()
    assert "_auth_user_id" not in client.session
    assert "This code was already used. Wait for the next code" in text
    assert "Incorrect code." not in text
    # A wrong code is still just wrong.
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert "Incorrect code." in wrong.content.decode()


def test_failed_logins_are_rate_limited_even_for_the_right_password(client, carol):
    _with_password(carol)
    for _ in range(5):
        response = client.post(
            reverse("account_login"), {"login": "carol@example.com", "password": "no"}
        )
        assert response.status_code == 200
    response = client.post(
        reverse("account_login"), {"login": "carol@example.com", "password": PASSWORD}
    )
    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts" in response.content


def test_nobody_can_sign_themselves_up(client):
    from django.contrib.auth import get_user_model

    client.post(
        reverse("account_signup"),
        {"email": "eve@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert not get_user_model().objects.filter(email="eve@example.com").exists()


def test_the_django_admin_login_form_cannot_skip_the_totp_step(client, alice):
    _with_password(alice)
    give_totp(alice.user)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "alice", "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=%2Fadmin%2F"
    assert "_auth_user_id" not in client.session

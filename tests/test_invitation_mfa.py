"""Issue 21 item 2: a person added in the portal proves their e-mail address
by following the invitation link, so allauth lets them set up TOTP (it
refuses with an unverified address)."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts_app.models import IamUser

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def _accept_invitation(client, login, alice) -> IamUser:
    login(alice).post(
        reverse("person_add"),
        {"email": "frank@example.com", "iam_user_name": "frank", "first_name": "Frank"},
    )
    client.logout()
    (invite,) = [m for m in mail.outbox if m.to == ["frank@example.com"]]
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", invite.body
    )
    page = client.get(link[1], follow=True)
    client.post(
        page.redirect_chain[-1][0], {"password1": PASSWORD, "password2": PASSWORD}
    )
    return IamUser.objects.get(name="frank")


def test_following_the_invitation_marks_the_address_verified_and_primary(
    client, login, alice
):
    frank = _accept_invitation(client, login, alice)
    (address,) = EmailAddress.objects.filter(user=frank.user)
    assert address.email == "frank@example.com"
    assert address.verified and address.primary


def test_an_approver_added_in_the_portal_can_set_up_totp_after_the_invitation(
    client, login, alice, payments
):
    frank = _accept_invitation(client, login, alice)
    payments.approvers.add(frank.user)
    client.post(
        reverse("account_login"), {"login": "frank@example.com", "password": PASSWORD}
    )
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200, page.get("Location")
    assert "verified your email" not in page.content.decode()


def test_a_reset_link_for_an_unverified_address_row_also_verifies_it(
    client, login, alice, carol
):
    """An address row allauth created unverified earlier (e.g. at a sign-in)
    is marked verified by the link too, not duplicated."""
    EmailAddress.objects.create(
        user=carol.user, email="carol@example.com", verified=False, primary=False
    )
    from accounts_app.invitations import invitation_url

    url = invitation_url(carol.user, base_url="http://testserver")
    page = client.get(url.removeprefix("http://testserver"), follow=True)
    client.post(
        page.redirect_chain[-1][0], {"password1": PASSWORD, "password2": PASSWORD}
    )
    (address,) = EmailAddress.objects.filter(user=carol.user)
    assert address.verified and address.primary


def test_a_wrong_reset_link_verifies_nothing(client, carol):
    client.get("/accounts/password/reset/key/1-wrong-key/", follow=True)
    assert not EmailAddress.objects.filter(user=carol.user, verified=True).exists()

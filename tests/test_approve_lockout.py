"""Issue 21 item 6: wrong TOTP codes on API decisions are limited like the
sign-in's TOTP step (the same allauth bucket per person, in the shared
cache): after 5 wrong codes, deciding answers 429 with Retry-After, even with
the right code, and the portal's TOTP step refuses too."""

import pytest
from django.urls import reverse

from accounts_app.models import AccessRequest, RequestStatus
from tests.conftest import give_totp, totp_code
from tests.helpers import request
from tests.test_api import Api, _problem

pytestmark = pytest.mark.django_db

WRONG = "000000"


@pytest.fixture
def approver(bob):
    give_totp(bob.user)
    return bob


def _wrong(api, req, times):
    for _ in range(times):
        body = _problem(api.post(f"/approvals/{req.pk}/approve", {"totp": WRONG}), 400)
        assert "totp" in body["errors"]


def test_six_wrong_codes_lock_approving_with_429_and_retry_after(
    carol, approver, deploy_role
):
    req = request(carol, deploy_role)
    api = Api(approver)
    _wrong(api, req, 5)
    locked = api.post(f"/approvals/{req.pk}/approve", {"totp": totp_code()})
    body = _problem(locked, 429)
    assert "Too many wrong codes" in body["detail"]
    assert 1 <= int(locked["Retry-After"]) <= 300
    reject = api.post(
        f"/approvals/{req.pk}/reject", {"totp": totp_code(), "comment": "no"}
    )
    _problem(reject, 429)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


def test_the_lock_is_per_person_and_another_token_does_not_reset_it(
    carol, dave, approver, erin, deploy_role
):
    req = request(carol, deploy_role)
    _wrong(Api(approver), req, 5)
    _problem(Api(approver).post(f"/approvals/{req.pk}/approve", {"totp": WRONG}), 429)
    # Someone else's decisions are not locked.
    give_totp(erin.user)
    other = Api(erin).post(f"/approvals/{req.pk}/approve", {"totp": WRONG})
    assert other.status_code == 404  # not erin's project; no 429


def test_a_right_code_resets_the_count(carol, dave, approver, deploy_role):
    first, second = request(carol, deploy_role), request(dave, deploy_role)
    api = Api(approver)
    _wrong(api, first, 4)
    ok = api.post(f"/approvals/{first.pk}/approve", {"totp": totp_code()})
    assert ok.status_code == 200, ok.content
    _wrong(api, second, 4)  # would be 429 had the count not been emptied


def test_wrong_codes_over_the_api_also_lock_the_portal_totp_step(
    client, carol, approver, deploy_role
):
    """One budget for both doors: guessing over the API uses up the sign-in's."""
    req = request(carol, deploy_role)
    _wrong(Api(approver), req, 5)
    approver.user.set_password("a good password here")
    approver.user.save()
    client.post(
        reverse("account_login"),
        {"login": "bob@example.com", "password": "a good password here"},
    )
    page = client.post(reverse("mfa_authenticate"), {"code": totp_code()})
    assert "_auth_user_id" not in client.session
    assert page.status_code == 200
    assert b"Too many" in page.content


def test_the_web_approve_form_asks_no_code_so_it_has_nothing_to_guess(
    login, carol, approver, deploy_role
):
    """The page's decision relies on the TOTP of the sign-in (itself
    limited); a locked API does not block it."""
    req = request(carol, deploy_role)
    _wrong(Api(approver), req, 5)
    web = login(approver)
    response = web.post(reverse("decide", args=[req.pk]), {"decision": "approve"})
    assert response.status_code == 302
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


def test_the_cli_says_approving_is_locked_and_exits_rate_limited(
    live_server, transactional_db, carol, approver, deploy_role, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from opsgate_cli import common, main
    from tests.test_cli import as_person

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    req = request(carol, deploy_role)
    env = as_person(approver, live_server.url)
    for _ in range(5):
        result = CliRunner().invoke(
            main.app, ["approve", str(req.pk), "--totp", WRONG], env=env
        )
        assert result.exit_code != 0
    result = CliRunner().invoke(
        main.app, ["approve", str(req.pk), "--totp", totp_code()], env=env
    )
    assert result.exit_code == common.RATE_LIMITED, result.output
    assert "Too many wrong codes" in result.output

"""Issue 21 item 7: a NUL character in an API JSON body is a 400 problem,
never a 500 HTML page (PostgreSQL cannot store NUL in text)."""

import json

import pytest
from django.test import Client

from accounts_app.models import AccessRequest
from accounts_app.services import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol_api(carol):
    _, secret = tokens.token_create(
        owner=carol.user, name="t", scopes=["read", "request"], days=1, actor=carol.user
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", raise_request_exception=False)


def _post(client, body: str):
    return client.post("/api/v1/requests", body, content_type="application/json")


@pytest.mark.parametrize(
    "reason, field",
    [("deploy\u0000now", "reason"), ("\u0000", "reason")],
)
def test_a_nul_in_a_json_string_is_a_400_problem(carol_api, deploy_role, reason, field):
    body = {
        "project": deploy_role.project.name,
        "os_user": deploy_role.os_user,
        "reason": reason,
        "duration_hours": 8,
    }
    response = _post(carol_api, json.dumps(body))
    assert response.status_code == 400, response.content[:200]
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert "NUL" in problem["detail"]
    assert field in problem["errors"]
    assert not AccessRequest.objects.exists()


def test_a_nul_in_a_json_key_is_a_400_problem(carol_api, deploy_role):
    response = _post(carol_api, '{"reason\\u0000": "x"}')
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_an_unexpected_error_under_the_api_is_a_problem_not_a_page(
    carol_api, deploy_role, monkeypatch
):
    from portal.api import requests

    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(requests.access_requests, "access_request_create", boom)
    body = {
        "project": deploy_role.project.name,
        "os_user": deploy_role.os_user,
        "reason": "deploy",
        "duration_hours": 8,
    }
    response = _post(carol_api, json.dumps(body))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Server error"

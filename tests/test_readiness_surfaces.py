"""Readiness on every surface (issue 25): My access, the request status the
page polls, the API's request schema and POST /requests/{id}/check, `opsgate
status` and `opsgate check`. Each failure reason appears with its fix.

The failed checks come from the real checks (provisioning/readiness/) run
against a fake AWS in which everything that can be wrong is wrong, so the
pages show exactly the messages the worker writes."""

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from typer.testing import CliRunner

from accounts_app.models import AccessRequest, ReadinessState
from accounts_app.services import access_requests, tokens
from accounts_app.services import readiness as readiness_service
from opsgate_cli import common, main
from opsgate_cli.commands import requests as request_commands
from provisioning import aws, os_users, readiness, tasks
from tests.helpers import grant as make_grant

pytestmark = pytest.mark.django_db


class Pages:
    def __init__(self, pages):
        self.pages = pages

    def paginate(self, **kwargs):
        return self.pages


class BrokenAws:
    """IAM, EC2 and SSM of an account where each check fails."""

    def get_user(self, **kw):
        return {"User": {"UserName": kw["UserName"]}}

    def get_paginator(self, name):
        if name == "list_groups_for_user":
            return Pages([{"Groups": []}])
        instances = [
            {
                "InstanceId": i,
                "State": {"Name": state},
                "Tags": [{"Key": "Name", "Value": name}],
            }
            for i, state, name in (
                ("i-offline", "stopped", "batch"),
                ("i-noagent", "running", "legacy"),
                ("i-nouser", "running", "web"),
            )
        ]
        return Pages([{"Reservations": [{"Instances": instances}]}])

    def list_mfa_devices(self, **kw):
        return {"MFADevices": []}

    def get_role(self, **kw):
        return {
            "Role": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                "Tags": [],
            }
        }

    def list_attached_role_policies(self, **kw):
        return {"AttachedPolicies": []}

    def describe_instance_information(self, **kw):
        return {
            "InstanceInformationList": [
                {"InstanceId": "i-offline", "PingStatus": "ConnectionLost"},
                {"InstanceId": "i-nouser", "PingStatus": "Online"},
            ]
        }

    def send_command(self, **kw):
        return {"Command": {"CommandId": "c"}}

    def get_command_invocation(self, **kw):
        return {
            "Status": "Success",
            "StandardOutputContent": "opsgate-os-user: missing",
        }


@pytest.fixture
def broken_aws(monkeypatch):
    fake = BrokenAws()
    monkeypatch.setattr(aws, "client", lambda *a, **kw: fake)
    return fake


@pytest.fixture
def published(monkeypatch):
    """The check tasks published (nothing runs)."""
    sent = []
    monkeypatch.setattr(tasks, "_publish", lambda task, pk, **kw: sent.append(pk))
    return sent


@pytest.fixture
def live_grant(carol, bob, deploy_role, readiness_on):
    """carol's grant, approved and in the role's trust (no AWS involved)."""
    req = make_grant(carol, deploy_role, bob)
    AccessRequest.objects.filter(pk=req.pk).update(provisioned_at=timezone.now())
    return AccessRequest.objects.get(pk=req.pk)


@pytest.fixture
def not_ready(live_grant, broken_aws, monkeypatch):
    monkeypatch.setattr(
        "django.conf.settings.OPSGATE",
        {**settings.OPSGATE, "READINESS_PROPAGATION_SECONDS": 0},
    )
    readiness.grant_readiness_run(grant_id=live_grant.pk, retry=False)
    return AccessRequest.objects.get(pk=live_grant.pk)


# What each failure reason says, and what to do about it.
REASONS = {
    "operators_group": (
        "carol is not in the group opsgate-operators",
        "An admin retries the sync of your IAM user",
    ),
    "mfa": (
        "Your IAM user carol has no MFA device",
        "name the virtual device exactly carol",
    ),
    "trust": (
        "The role's trust has no statement for opsgate's operators.",
        "opsgate rewrites the trust on its next sync",
    ),
    "role_setup": (
        "tags ManagedBy, Project, SSMSessionRunAs differ; policies "
        "opsgate-Ec2StartStop, opsgate-SsmSessionManager are not attached; the "
        "permissions boundary is not on.",
        "An admin reconciles the account (Drift page)",
    ),
    "instances": (
        "1 no OS user, 1 not managed, 1 offline",
        "turns on 'Create OS users' for the project",
    ),
}
ROWS = {
    "i-offline": "It is stopped (SSM: ConnectionLost): start it",
    "i-noagent": "SSM does not manage it",
    "i-nouser": "There is no OS user deploy: Session Manager refuses the session.",
}


def test_every_failure_reason_is_recorded_with_its_fix(not_ready):
    assert not_ready.readiness_state == ReadinessState.NOT_READY
    found = {c["key"]: c for c in not_ready.readiness_checks if not c["ok"]}
    assert set(found) == set(REASONS)
    for key, (message, fix) in REASONS.items():
        assert message in found[key]["message"], key
        assert fix in found[key]["fix"], key
    assert found["mfa"]["link"].startswith("https://123456789012.signin.aws")
    rows = {r["instance_id"]: r for r in found["instances"]["rows"]}
    assert {i: r["state"] for i, r in rows.items()} == {
        "i-offline": "offline",
        "i-noagent": "not managed",
        "i-nouser": "no OS user",
    }


def test_my_access_shows_not_ready_with_each_failed_check_and_what_to_do(
    not_ready, login, monkeypatch
):
    monkeypatch.setattr(
        "provisioning.direct.instances_by_role",
        lambda roles: {r.pk: ([], "") for r in roles},
    )
    page = login(not_ready.requester).get(reverse("home")).content.decode()
    assert 'data-readiness="not_ready"' in page
    assert "Not ready" in page
    for message, fix in REASONS.values():
        assert message.replace("'", "&#x27;") in page
        assert fix.replace("'", "&#x27;") in page
    for text in ROWS.values():
        assert text.replace("'", "&#x27;") in page
    assert "Open the AWS console page" in page
    assert "Check again" in page


def test_my_access_shows_ready_with_the_time_from_approval(
    live_grant, login, monkeypatch
):
    monkeypatch.setattr(
        "provisioning.direct.instances_by_role",
        lambda roles: {r.pk: ([], "") for r in roles},
    )
    AccessRequest.objects.filter(pk=live_grant.pk).update(
        decided_at=timezone.now() - timezone.timedelta(seconds=42)
    )
    readiness_service.readiness_record(
        grant_id=live_grant.pk,
        checks=[
            readiness.Check(
                "mfa", "MFA device", True, "carol has an MFA device."
            ).as_dict()
        ],
        ready=True,
    )
    page = login(live_grant.requester).get(reverse("home")).content.decode()
    assert 'data-readiness="ready"' in page
    assert "nothing stands in your way" in page
    assert "Ready 42 s after approval." in page


def test_check_again_asks_the_worker_and_shows_checking(
    not_ready, login, published, django_capture_on_commit_callbacks
):
    client = login(not_ready.requester)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("request_check", args=[not_ready.pk]))
    assert response.status_code == 302
    assert published == [[not_ready.pk]]  # one check task, for this grant
    assert AccessRequest.objects.get(pk=not_ready.pk).readiness_state == "checking"
    status = client.get(reverse("request_status")).json()
    assert status["requests"][str(not_ready.pk)]["readiness"] == "checking"


def test_check_again_on_an_ended_grant_says_why_and_asks_nothing(
    live_grant, login, published, django_capture_on_commit_callbacks
):
    access_requests.access_request_revoke(
        access_request=live_grant, actor=live_grant.requester.user
    )
    client = login(live_grant.requester)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("request_check", args=[live_grant.pk]), follow=True
        )
    assert "This grant is not active: there is nothing to check." in (
        response.content.decode()
    )
    assert published == []


def test_nobody_checks_another_persons_grant(live_grant, dave, login, published):
    response = login(dave).post(reverse("request_check", args=[live_grant.pk]))
    assert response.status_code == 404
    assert published == []


# --- API -----------------------------------------------------------------------


def bearer(person, scopes=("read", "request")) -> dict:
    _, secret = tokens.token_create(
        owner=person.user, name="t", scopes=list(scopes), days=1, actor=person.user
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_api_request_schema_carries_readiness(not_ready, client):
    body = client.get(
        f"/api/v1/requests/{not_ready.pk}", **bearer(not_ready.requester)
    ).json()
    ready = body["readiness"]
    assert ready["state"] == "not_ready" and ready["label"] == "Not ready"
    assert ready["ready_at"] is None and ready["seconds_to_ready"] is None
    failed = {c["key"]: c for c in ready["failed"]}
    assert set(failed) == set(REASONS)
    assert "name the virtual device exactly carol" in failed["mfa"]["fix"]
    assert {r["state"] for r in failed["instances"]["rows"]} == {
        "offline",
        "not managed",
        "no OS user",
    }


def test_the_api_check_endpoint_asks_again(
    not_ready, client, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/requests/{not_ready.pk}/check", **bearer(not_ready.requester)
        )
    assert response.status_code == 202
    assert response.json()["readiness"]["state"] == "checking"
    assert published == [[not_ready.pk]]


def test_the_api_check_needs_the_request_scope_and_an_active_grant(
    live_grant, client, published
):
    read_only = bearer(live_grant.requester, scopes=("read",))
    url = f"/api/v1/requests/{live_grant.pk}/check"
    assert client.post(url, **read_only).status_code == 403
    access_requests.access_request_revoke(
        access_request=live_grant, actor=live_grant.requester.user
    )
    response = client.post(url, **bearer(live_grant.requester))
    assert response.status_code in (400, 422)
    assert "not active" in response.content.decode()
    assert published == []


def test_an_ended_grant_is_never_shown_ready(live_grant, client):
    readiness_service.readiness_record(grant_id=live_grant.pk, checks=[], ready=True)
    access_requests.access_request_revoke(
        access_request=live_grant, actor=live_grant.requester.user
    )
    body = client.get(
        f"/api/v1/requests/{live_grant.pk}", **bearer(live_grant.requester)
    ).json()
    assert body["readiness"]["state"] == "unknown"


# --- CLI -------------------------------------------------------------------------


class ApiThroughClient:
    """The CLI's Api, answered by Django's test client (no server)."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def __call__(self, *args, **kwargs):
        return self

    def call(self, method, path, **kwargs):
        do = getattr(self.client, method.lower())
        response = do(f"/api/v1{path}", **self.headers)
        if response.status_code >= 400:
            raise common.Failure(response.json()["detail"], common.BAD_INPUT)
        return response.json()


def test_opsgate_status_shows_not_ready_and_each_failed_check(
    not_ready, client, monkeypatch
):
    monkeypatch.setattr(
        request_commands, "Api", ApiThroughClient(client, bearer(not_ready.requester))
    )
    result = CliRunner().invoke(main.app, ["status"])
    assert result.exit_code == 0, result.output
    assert f"#{not_ready.pk}" in result.output and ", Not ready" in result.output
    for message, fix in REASONS.values():
        assert message in result.output
        assert fix in result.output
    assert "i-nouser (us-east-1): no OS user." in result.output


def test_opsgate_check_waits_for_the_outcome_and_exits_11_when_not_ready(
    not_ready, client, monkeypatch, broken_aws
):
    api = ApiThroughClient(client, bearer(not_ready.requester))
    monkeypatch.setattr(request_commands, "Api", api)
    # The worker, run where the CLI would sleep.
    monkeypatch.setattr(
        request_commands.time,
        "sleep",
        lambda s: readiness.grant_readiness_run(grant_id=not_ready.pk, retry=False),
    )
    monkeypatch.setattr(tasks, "_publish", lambda task, pk, **kw: True)
    result = CliRunner().invoke(main.app, ["check", str(not_ready.pk)])
    assert result.exit_code == common.NOT_READY, result.output
    assert "Your IAM user carol has no MFA device" in result.output
    assert f"Request #{not_ready.pk} is not ready." in result.output


def test_opsgate_status_shows_ready_with_its_time(live_grant, client, monkeypatch):
    AccessRequest.objects.filter(pk=live_grant.pk).update(
        decided_at=timezone.now() - timezone.timedelta(seconds=7)
    )
    readiness_service.readiness_record(grant_id=live_grant.pk, checks=[], ready=True)
    monkeypatch.setattr(
        request_commands, "Api", ApiThroughClient(client, bearer(live_grant.requester))
    )
    result = CliRunner().invoke(main.app, ["status", str(live_grant.pk)])
    assert ", Ready (7 s after approval)" in result.output


def test_the_os_user_answer_the_fake_gives_is_the_documents_contract():
    assert (
        os_users.parse_output(
            BrokenAws().get_command_invocation()["StandardOutputContent"]
        )
        == "missing"
    )

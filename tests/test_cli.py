"""The `opsgate` CLI end to end against a live server and moto: device login,
request --wait, approve and reject with TOTP, done, the ~/.aws/config profile
written into a temporary HOME, and the ssh command; plus its exit codes for an
expired token and no network, and the config file's permissions."""

import json
import stat
import time as real_time

import boto3
import pytest
from django.test import Client
from typer.testing import CliRunner

from accounts_app.models import AccessRequest, ApiToken, DeviceAuthorization
from accounts_app.services import access_requests, tokens
from opsgate_cli import awsconfig, main
from provisioning import sync
from tests.conftest import give_totp, totp_code

ALL = ["read", "request", "approve"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("AWS_CONFIG_FILE", "OPSGATE_URL", "OPSGATE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def run(*args, env=None):
    result = CliRunner().invoke(main.app, list(args), env=env)
    return result


def as_person(person, url, scopes=ALL):
    _, secret = tokens.token_create(
        owner=person.user, name="cli", scopes=scopes, days=1, actor=person.user
    )
    return {"OPSGATE_URL": url, "OPSGATE_TOKEN": secret}


class FakeTime:
    """The CLI's clock: each sleep runs the next step of the story instead."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.monotonic = real_time.monotonic

    def sleep(self, seconds):
        if self.steps:
            self.steps.pop(0)()


# --- ~/.aws/config editing ----------------------------------------------------------

SECTIONS = {
    "profile opsgate-payments-deploy": {
        "role_arn": "arn:aws:iam::123456789012:role/opsgate/payments-deploy",
        "source_profile": "opsgate",
    }
}


def test_profile_sections_are_idempotent_and_leave_the_rest_alone():
    original = (
        "# my config\n[default]\nregion = eu-west-1\n\n"
        "[profile opsgate-payments-deploy]\nrole_arn = old\n\n"
        "# the work account\n[profile work]\naws_access_key_id = x ; keep\n"
    )
    once = awsconfig.upsert_sections(original, SECTIONS)
    assert awsconfig.upsert_sections(once, SECTIONS) == once
    assert once == (
        "# my config\n[default]\nregion = eu-west-1\n\n"
        "[profile opsgate-payments-deploy]\n"
        "role_arn = arn:aws:iam::123456789012:role/opsgate/payments-deploy\n"
        "source_profile = opsgate\n\n"
        "# the work account\n[profile work]\naws_access_key_id = x ; keep\n"
    )
    added = awsconfig.upsert_sections("[default]\nregion = x", SECTIONS)
    assert added.startswith("[default]\nregion = x\n\n[profile opsgate-payments")


def test_profile_names_are_safe():
    assert awsconfig.profile_name("Data Platform", "ops") == "opsgate-data-platform-ops"
    assert awsconfig.profile_name("決済", "deploy", role_name="k-deploy") == (
        "opsgate-k-deploy"
    )
    assert awsconfig.profile_name("A  b", "ops") == "opsgate-a-b-ops"


def test_config_is_private_and_follows_xdg(home):
    from opsgate_cli import config

    path = config.save({"url": "http://x", "token": "ogp_x"})
    assert path == home / ".config" / "opsgate" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


# --- Against a live server ------------------------------------------------------------


@pytest.fixture
def world(transactional_db, aws_env, alice, bob, carol, deploy_role, settings):
    settings.OPSGATE = {**settings.OPSGATE, "INSTANCE_CACHE_SECONDS": 0}
    give_totp(bob.user)
    return {"carol": carol, "bob": bob, "role": deploy_role}


def test_login_by_device_flow_saves_a_private_token(
    live_server, world, home, monkeypatch
):
    carol = world["carol"]

    def confirm_in_browser():
        code = DeviceAuthorization.objects.latest("created_at").user_code
        browser = Client()
        browser.force_login(carol.user)
        page = browser.get("/device/", {"user_code": code})
        assert code in page.content.decode()
        browser.post("/device/", {"user_code": code})

    monkeypatch.setattr(main, "time", FakeTime(confirm_in_browser))
    result = run("login", "--url", live_server.url)
    assert result.exit_code == 0, result.output
    assert "Signed in" in result.output and "carol" in result.output
    saved = json.loads((home / ".config/opsgate/config.json").read_text())
    assert saved["url"] == live_server.url
    assert tokens.token_authenticate(saved["token"]).user == carol.user
    assert run("--json", "status").exit_code == 0
    logout = run("logout")
    assert logout.exit_code == 0, logout.output
    assert ApiToken.objects.get().revoked_at is not None
    assert run("status").exit_code == main.UNAUTHENTICATED


def test_request_approve_with_totp_profile_ssh_and_done(live_server, world, home):
    carol_env = as_person(world["carol"], live_server.url)
    bob_env = as_person(world["bob"], live_server.url)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Project", "Value": "payments"},
                    {"Key": "Name", "Value": "pay-web-1"},
                ],
            }
        ],
    )
    created = run(
        "--json",
        "request",
        "payments",
        "--as",
        "deploy",
        "--reason",
        "INC-7",
        "--hours",
        "8",
        env=carol_env,
    )
    assert created.exit_code == 0, created.output
    pk = json.loads(created.output)["id"]
    listed = run("approvals", env=bob_env)
    assert f"#{pk}" in listed.output and "carol wants payments" in listed.output
    wrong = run("approve", str(pk), "--totp", "000000", env=bob_env)
    assert wrong.exit_code == main.BAD_INPUT and "totp" in wrong.output
    ok = run("approve", str(pk), "--totp", totp_code(), env=bob_env)
    assert ok.exit_code == 0, ok.output
    assert AccessRequest.objects.get(pk=pk).status == "approved"
    sync.role_sync(role_id=world["role"].pk)

    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_text("[profile opsgate]\naws_access_key_id = mine\n\n[x]\ny = z\n")
    wrote = run("profile", env=carol_env)
    assert wrote.exit_code == 0, wrote.output
    text = aws_config.read_text()
    assert text.startswith(
        "[profile opsgate]\naws_access_key_id = mine\n\n[x]\ny = z\n"
    )
    assert "[profile opsgate-payments-deploy]\n" in text
    assert "mfa_serial = arn:aws:iam::123456789012:mfa/carol\n" in text
    assert "role_session_name = carol\n" in text
    assert "source_profile = opsgate\n" in text
    run("profile", env=carol_env)
    assert aws_config.read_text() == text

    ssh = run("--json", "ssh", "pay-web-1", "--dry-run", env=carol_env)
    assert ssh.exit_code == 0, ssh.output
    command = json.loads(ssh.output)["command"]
    assert command[:4] == ["aws", "ssm", "start-session", "--target"]
    assert command[4].startswith("i-")
    assert command[5:7] == ["--profile", "opsgate-payments-deploy"]
    nowhere = run("ssh", "i-0000000000000000f", "--dry-run", env=carol_env)
    assert nowhere.exit_code == main.REFUSED

    ended = run("done", str(pk), env=carol_env)
    assert ended.exit_code == 0, ended.output
    assert AccessRequest.objects.get(pk=pk).status == "revoked"


def test_request_wait_follows_the_request_until_active(
    live_server, world, home, monkeypatch
):
    env = as_person(world["carol"], live_server.url)

    def approve():
        req = AccessRequest.objects.get()
        access_requests.access_request_approve(
            access_request=req, approver=world["bob"].user
        )

    def provision():
        sync.role_sync(role_id=world["role"].pk)

    monkeypatch.setattr(main, "time", FakeTime(approve, provision))
    result = run(
        "request",
        "payments",
        "--as",
        "deploy",
        "--reason",
        "INC-8",
        "--hours",
        "8",
        "--wait",
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Waiting for approval" in result.output
    assert "Provisioning" in result.output
    assert (
        result.output.strip().endswith(result.output.strip().splitlines()[-1])
        and "Active until" in result.output
    )


def test_request_wait_exits_1_when_rejected(live_server, world, home, monkeypatch):
    env = as_person(world["carol"], live_server.url)

    def reject():
        access_requests.access_request_reject(
            access_request=AccessRequest.objects.get(),
            approver=world["bob"].user,
            comment="no ticket",
        )

    monkeypatch.setattr(main, "time", FakeTime(reject))
    result = run(
        "request",
        "payments",
        "--as",
        "deploy",
        "--reason",
        "x",
        "--hours",
        "8",
        "--wait",
        env=env,
    )
    assert result.exit_code == main.REFUSED
    assert "rejected: no ticket" in result.output


def test_bad_input_shows_the_field_message(live_server, world, home):
    env = as_person(world["carol"], live_server.url)
    result = run(
        "request",
        "payments",
        "--as",
        "deploy",
        "--reason",
        "x",
        "--hours",
        "5",
        env=env,
    )
    assert result.exit_code == main.BAD_INPUT
    assert "duration_hours: Pick one of 1 h, 8 h, 24 h, 72 h, 168 h." in result.output


def test_expired_token_and_no_network_have_their_exit_codes(live_server, world, home):
    env = as_person(world["carol"], live_server.url)
    ApiToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    expired = run("status", env=env)
    assert expired.exit_code == main.UNAUTHENTICATED
    assert "expired, revoked or unknown" in expired.output
    offline = run("status", env={**env, "OPSGATE_URL": "http://127.0.0.1:9"})
    assert offline.exit_code == main.NO_NETWORK
    assert "Cannot reach http://127.0.0.1:9" in offline.output

"""The `opsgate` CLI end to end against a live server and moto: device login,
request --wait, approve and reject with TOTP, done, the ~/.aws/config profile
written into a temporary HOME, and the ssh command; plus its exit codes for an
expired token and no network, and the config file's permissions."""

import json
import re
import shlex
import stat
import time as real_time
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import pytest
from django.test import Client
from typer.testing import CliRunner

from accounts_app.models import AccessRequest, ApiToken, DeviceAuthorization
from accounts_app.services import access_requests, tokens
from opsgate_cli import awsconfig, common, main
from opsgate_cli.api import Api
from opsgate_cli.commands import login as login_commands
from opsgate_cli.commands import requests as request_commands
from provisioning import sync
from tests.conftest import give_totp, totp_code
from tests.helpers import amazon_linux_image
from tests.test_accounts import hub  # noqa: F401 (the accounts fixture)

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
        self.slept = []

    def sleep(self, seconds):
        self.slept.append(seconds)
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


def _grant_payload(**changes):
    grant = {
        "id": 1,
        "state": "active",
        "account": "prod",
        "profile_name": "opsgate-checkout-deploy-222222222222",
        "role_arn": "arn:aws:iam::222222222222:role/opsgate/checkout-deploy",
        "mfa_serial": "arn:aws:iam::123456789012:mfa/carol",
        "source_profile": "opsgate",
        "role_session_name": "carol",
        "region": "us-east-1",
        "instances": [],
    }
    return {**grant, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"role_session_name": "carol\ncredential_process = /tmp/evil"},
        {"mfa_serial": "arn:aws:iam::1:mfa/x\r[profile default]"},
        {"region": "us-east-1\x00"},
        {"role_arn": "arn\u2028credential_process = x"},
        {"region": " us-east-1"},
        {"profile_name": "x]\ncredential_process = /tmp/evil\n[y"},
        {"profile_name": "two words"},
    ],
)
def test_a_value_that_could_add_a_line_is_refused_and_nothing_is_written(
    home, monkeypatch, changes
):
    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setattr(Api, "call", lambda *a, **k: [_grant_payload(**changes)])
    env = {"OPSGATE_URL": "https://opsgate.example", "OPSGATE_TOKEN": "ogp_x"}
    result = run("profile", env=env)
    assert result.exit_code == common.REFUSED, result.output
    assert "Nothing was changed" in result.output
    assert aws_config.read_text() == "[default]\nregion = eu-west-1\n"
    assert [p.name for p in aws_config.parent.iterdir()] == ["config"]


ODD = (
    "# my own config; opsgate must not touch this line\r\n"
    "[default]\r\n"
    "region=eu-west-1   \r\n"
    "\r\n"
    ";  an old-style comment\r\n"
    "[ profile   opsgate ]   # keys live here\r\n"
    "aws_access_key_id = AKIAMINE\r\n"
    "\r\n"
    "[profile opsgate-old-role]\r\n"
    "role_arn = stale\r\n"
    "\r\n"
    "\t# indented comment about work\r\n"
    "[profile work]\r\n"
    "s3 =\r\n"
    "    max_concurrent_requests = 20\r\n"
    "output = json"
)


def test_profile_keeps_the_users_comments_spacing_and_profiles_byte_for_byte(
    home, monkeypatch
):
    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_bytes(ODD.encode())
    aws_config.chmod(0o640)
    sections = {
        "profile opsgate-old-role": {"role_arn": "new"},
        "profile opsgate-checkout-deploy-222222222222": {"region": "eu-west-1"},
    }
    awsconfig.write_profiles(sections, source={"region": "us-east-1"})
    assert aws_config.read_bytes().decode() == (
        "# my own config; opsgate must not touch this line\r\n"
        "[default]\r\n"
        "region=eu-west-1   \r\n"
        "\r\n"
        ";  an old-style comment\r\n"
        "[ profile   opsgate ]   # keys live here\r\n"
        "aws_access_key_id = AKIAMINE\r\n"
        "\r\n"
        "[profile opsgate-old-role]\r\n"
        "role_arn = new\r\n"
        "\r\n"
        "\t# indented comment about work\r\n"
        "[profile work]\r\n"
        "s3 =\r\n"
        "    max_concurrent_requests = 20\r\n"
        "output = json\r\n"
        "\r\n"
        "[profile opsgate-checkout-deploy-222222222222]\r\n"
        "region = eu-west-1\r\n"
    )
    assert stat.S_IMODE(aws_config.stat().st_mode) == 0o640
    once = aws_config.read_bytes()
    awsconfig.write_profiles(sections, source={"region": "us-east-1"})
    assert aws_config.read_bytes() == once


def test_the_config_is_replaced_whole_or_not_at_all(home, monkeypatch):
    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_text("[default]\nregion = eu-west-1\n")
    inode = aws_config.stat().st_ino

    def crash(*args):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(awsconfig.os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            awsconfig.write_profiles(SECTIONS, source={"region": "us-east-1"})
    assert aws_config.read_text() == "[default]\nregion = eu-west-1\n"
    assert not list(aws_config.parent.glob("*.tmp"))
    awsconfig.write_profiles(SECTIONS, source={"region": "us-east-1"})
    assert "[profile opsgate-payments-deploy]" in aws_config.read_text()
    assert aws_config.stat().st_ino != inode  # a new file renamed over it


def test_a_second_writer_waits_for_the_lock(home):
    import fcntl
    import os
    import threading

    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_text("[default]\n")
    lock = os.open(aws_config.parent / ".config.opsgate-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    writer = threading.Thread(
        target=awsconfig.write_profiles, args=(SECTIONS,), kwargs={"source": {}}
    )
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and aws_config.read_text() == "[default]\n"
    os.close(lock)
    writer.join(5)
    assert "[profile opsgate-payments-deploy]" in aws_config.read_text()


def test_a_symlinked_config_stays_a_symlink(home):
    real = home / "dotfiles" / "aws-config"
    real.parent.mkdir()
    real.write_text("[default]\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "config").symlink_to(real)
    awsconfig.write_profiles(SECTIONS, source={})
    assert (home / ".aws" / "config").is_symlink()
    assert "[profile opsgate-payments-deploy]" in real.read_text()


# --- Server URLs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flags", "code"),
    [
        ("http://opsgate.example", [], common.BAD_INPUT),
        ("http://10.0.0.5:8000", [], common.BAD_INPUT),
        ("ftp://opsgate.example", [], common.BAD_INPUT),
        ("opsgate.example", [], common.BAD_INPUT),
        ("http://opsgate.invalid", ["--insecure"], common.NO_NETWORK),
        ("https://opsgate.invalid", [], common.NO_NETWORK),
        ("http://localhost:9", [], common.NO_NETWORK),
        ("http://127.0.0.1:9", [], common.NO_NETWORK),
        ("http://[::1]:9", [], common.NO_NETWORK),
    ],
)
def test_plain_http_is_refused_except_to_this_machine_or_with_insecure(
    home, url, flags, code
):
    result = run(*flags, "status", env={"OPSGATE_URL": url, "OPSGATE_TOKEN": "ogp_x"})
    assert result.exit_code == code, result.output
    if code == common.BAD_INPUT:
        assert "https://" in result.output
    login = run(*flags, "login", "--url", url)
    assert login.exit_code == code, login.output


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

    monkeypatch.setattr(login_commands, "time", FakeTime(confirm_in_browser))
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
    assert run("status").exit_code == common.UNAUTHENTICATED


def test_request_approve_with_totp_profile_ssh_and_done(live_server, world, home):
    carol_env = as_person(world["carol"], live_server.url)
    bob_env = as_person(world["bob"], live_server.url)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = amazon_linux_image(ec2)
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
    assert wrong.exit_code == common.BAD_INPUT and "totp" in wrong.output
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
    assert nowhere.exit_code == common.REFUSED

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

    def nobody_yet():
        pass

    # The approver takes a while: the CLI reads the status every 2 s (as the
    # page polls), not less and less often, so it sees the grant in time.
    clock = FakeTime(nobody_yet, nobody_yet, nobody_yet, approve, provision)
    monkeypatch.setattr(request_commands, "time", clock)
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
    assert clock.slept == [1.0, 2.0, 2.0, 2.0, 2.0]
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

    monkeypatch.setattr(request_commands, "time", FakeTime(reject))
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
    assert result.exit_code == common.REFUSED
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
    assert result.exit_code == common.BAD_INPUT
    assert "duration_hours: Pick one of 1 h, 8 h, 24 h, 72 h, 168 h." in result.output


def test_expired_token_and_no_network_have_their_exit_codes(live_server, world, home):
    env = as_person(world["carol"], live_server.url)
    ApiToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    expired = run("status", env=env)
    assert expired.exit_code == common.UNAUTHENTICATED
    assert "expired, revoked or unknown" in expired.output
    offline = run("status", env={**env, "OPSGATE_URL": "http://127.0.0.1:9"})
    assert offline.exit_code == common.NO_NETWORK
    assert "Cannot reach http://127.0.0.1:9" in offline.output


# --- Several AWS accounts, against a live server (issue 22) ----------------------


@pytest.fixture
def local_zone(monkeypatch):
    """The CLI's machine is in India (+05:30): its times say so."""
    with monkeypatch.context() as patched:
        patched.setenv("TZ", "Asia/Kolkata")
        real_time.tzset()
        yield
    real_time.tzset()


@pytest.fixture
def accounts(transactional_db, hub, settings):  # noqa: F811 (imported fixture)
    """The demo's shape: people in the identity account; checkout has a
    deploy role in staging and one in prod, each with its instance."""
    from accounts_app.services import projects, roles
    from provisioning import aws
    from tests.helpers import run_instance
    from tests.test_accounts import person

    settings.OPSGATE = {**settings.OPSGATE, "INSTANCE_CACHE_SECONDS": 0}
    people_account, staging, prod = hub
    bob, carol = person(people_account, "bob"), person(people_account, "carol")
    give_totp(bob.user)
    checkout = projects.project_create(
        actor=None, name="checkout", account=staging, approvers=[bob.user]
    )
    found = {"bob": bob, "carol": carol}
    for account in (staging, prod):
        found[account.name] = roles.role_create(
            actor=None, project=checkout, os_user="deploy", account=account
        )
        run_instance(aws.client("ec2", account), "checkout", f"co-{account.name}")
    return found


def _approved(role, carol, bob):
    req = access_requests.access_request_create(
        requester=carol, role=role, reason="release", duration_hours=8, actor=carol.user
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    return req


def test_one_profile_per_grant_in_each_account_and_ssh_finds_the_right_one(
    live_server, accounts, home
):
    carol, bob = accounts["carol"], accounts["bob"]
    for name in ("staging", "prod"):
        _approved(accounts[name], carol, bob)
        sync.role_sync(role_id=accounts[name].pk)
    env = as_person(carol, live_server.url)
    aws_config = home / ".aws" / "config"
    aws_config.parent.mkdir()
    aws_config.write_text("# mine\n[profile opsgate]\naws_access_key_id = AKIAMINE\n")
    wrote = run("profile", env=env)
    assert wrote.exit_code == 0, wrote.output
    staging, prod = accounts["staging"].role_name, accounts["prod"].role_name
    assert f"Wrote 2 profile(s) in {aws_config}" in wrote.output
    assert aws_config.read_text() == (
        "# mine\n[profile opsgate]\naws_access_key_id = AKIAMINE\n\n"
        f"[profile opsgate-{staging}-111111111111]\n"
        f"role_arn = arn:aws:iam::111111111111:role/opsgate/{staging}\n"
        "mfa_serial = arn:aws:iam::123456789012:mfa/carol\n"
        "source_profile = opsgate\n"
        "role_session_name = carol\n"
        "region = eu-west-1\n\n"
        f"[profile opsgate-{prod}-222222222222]\n"
        f"role_arn = arn:aws:iam::222222222222:role/opsgate/{prod}\n"
        "mfa_serial = arn:aws:iam::123456789012:mfa/carol\n"
        "source_profile = opsgate\n"
        "role_session_name = carol\n"
        "region = us-east-1\n"
    )
    for name, account_id, region in (
        ("prod", "222222222222", "us-east-1"),
        ("staging", "111111111111", "eu-west-1"),
    ):
        ssh = run("--json", "ssh", f"co-{name}", "--dry-run", env=env)
        assert ssh.exit_code == 0, ssh.output
        command = json.loads(ssh.output)["command"]
        role = accounts[name].role_name
        assert command[5:] == [
            "--profile",
            f"opsgate-{role}-{account_id}",
            "--region",
            region,
        ]


def test_request_chooses_the_account_by_name_or_id_and_refuses_to_guess(
    live_server, accounts, home, local_zone
):
    env = as_person(accounts["carol"], live_server.url)
    args = ["request", "checkout", "--as", "deploy", "--reason", "r", "--hours", "8"]
    guess = run(*args, env=env)
    assert guess.exit_code == common.BAD_INPUT
    assert "several AWS accounts" in guess.output
    assert "prod (222222222222), staging (111111111111)" in guess.output
    assert not AccessRequest.objects.exists()
    prod = run(*args, "--account", "prod", env=env)
    assert prod.exit_code == 0, prod.output
    assert "checkout as deploy in prod (222222222222): Waiting for approval" in (
        prod.output
    )
    staging = run(*args, "--account", "111111111111", env=env)
    assert staging.exit_code == 0, staging.output
    assert {r.role.account.name for r in AccessRequest.objects.all()} == {
        "prod",
        "staging",
    }
    req = AccessRequest.objects.get(role__account__name="prod")
    access_requests.access_request_approve(
        access_request=req, approver=accounts["bob"].user
    )
    listed = run("status", env=env)
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if "in prod" in x)
    expires = req.__class__.objects.get(pk=req.pk).expires_at
    local = expires.astimezone(ZoneInfo("Asia/Kolkata"))
    assert line.endswith(f"until {local:%Y-%m-%d %H:%M} +05:30")


def test_ticket_scheduled_start_and_break_glass_from_the_terminal(
    live_server, world, home, local_zone
):
    from datetime import datetime, timedelta

    project = world["role"].project
    project.ticket_pattern = r"INC-\d+"
    project.allow_break_glass = True
    project.save(update_fields=["ticket_pattern", "allow_break_glass"])
    project.break_glass_people.add(world["carol"].user)
    env = as_person(world["carol"], live_server.url)
    base = ["request", "payments", "--as", "deploy", "--reason", "release"]
    no_ticket = run(*base, "--hours", "8", env=env)
    assert no_ticket.exit_code == common.BAD_INPUT
    assert "ticket: payments requires a ticket reference." in no_ticket.output
    bad_start = run(
        *base, "--hours", "8", "--ticket", "INC-7", "--start", "soon", env=env
    )
    assert bad_start.exit_code == common.BAD_INPUT
    assert "--start" in bad_start.output
    assert not AccessRequest.objects.exists()
    start = (datetime.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    typed = f"{start:%Y-%m-%d %H:%M}"  # local time (India), no offset
    scheduled = run(
        *base, "--hours", "8", "--ticket", "INC-7", "--start", typed, env=env
    )
    assert scheduled.exit_code == 0, scheduled.output
    assert f"from {typed} +05:30" in scheduled.output
    req = AccessRequest.objects.get()
    assert req.ticket == "INC-7"
    assert req.starts_at == start.replace(tzinfo=ZoneInfo("Asia/Kolkata"))
    glass = [*base[:5], "site down"]
    with_hours = run(*glass, "--break-glass", "--hours", "8", env=env)
    assert with_hours.exit_code == common.BAD_INPUT
    used = run("--json", *glass, "--break-glass", env=env)
    assert used.exit_code == 0, used.output
    body = json.loads(used.output)
    assert (body["break_glass"], body["status"]) == (True, "approved")
    assert AccessRequest.objects.get(pk=body["id"]).break_glass


def test_help_texts_are_plain():
    text = run("request", "--help").output
    assert "omit" not in text
    for option in ("--ticket", "--start", "--break-glass", "--account"):
        assert option in text
    assert "--insecure" in run("--help").output


# --- The walkthrough of docs/cli.md, on the demo's data ---------------------------


def _walkthrough() -> list[list[str]]:
    """The `opsgate …` lines of docs/cli.md's walkthrough, comments dropped."""
    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    block = text.split("A walkthrough against a fresh demo", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [
        words
        for line in block.splitlines()
        if (words := shlex.split(line, comments=True)) and words[0] == "opsgate"
    ]


def test_the_cli_walkthrough_works_as_written_on_the_demo_data(
    live_server, transactional_db, aws_env, tmp_path, monkeypatch, settings
):
    """docs/cli.md's commands, in order, as the people it names on a fresh
    demo seed: dave requests and waits, bob approves with his TOTP code."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from accounts_app.models import OperationRole
    from provisioning.management.commands.demo_seed import DEMO_TOTP_SECRET

    settings.OPSGATE = {**settings.OPSGATE, "INSTANCE_CACHE_SECONDS": 0}
    call_command("demo_seed")
    users = {u.username: u for u in get_user_model().objects.all()}
    homes = {}
    for name in ("dave", "bob"):
        homes[name] = tmp_path / name
        homes[name].mkdir()
    dave = {
        "HOME": str(homes["dave"]),
        "XDG_CONFIG_HOME": str(homes["dave"] / ".config"),
        "AWS_CONFIG_FILE": None,
    }
    _, bob_secret = tokens.token_create(
        owner=users["bob"], name="cli", scopes=ALL, days=1, actor=users["bob"]
    )
    bob = {
        "HOME": str(homes["bob"]),
        "OPSGATE_URL": live_server.url,
        "OPSGATE_TOKEN": bob_secret,
    }
    demo_url = "http://127.0.0.1:8000"
    # In a fresh demo (numbers from 1) dave's request is #6, as written.
    assert AccessRequest.objects.count() == 5
    outputs = {}
    number = {}

    def pk(word: str) -> str:  # this database's number for the doc's #6
        return str(number["pk"]) if word == "6" else word

    def confirm_in_dave_browser():
        code = DeviceAuthorization.objects.latest("created_at").user_code
        browser = Client()
        browser.force_login(users["dave"])
        browser.post("/device/", {"user_code": code})

    def bob_approves():
        number["pk"] = AccessRequest.objects.latest("pk").pk
        for words in bob_steps:
            code = totp_code(DEMO_TOTP_SECRET)
            words = [code if w == "123456" else pk(w) for w in words]
            result = run(*words[1:], env=bob)
            assert result.exit_code == 0, (words, result.output)
            outputs[words[1]] = result.output.replace(f"#{number['pk']}", "#6")

    def provision():
        sync.role_sync(
            role_id=OperationRole.objects.get(
                project__name="payments", os_user="deploy"
            ).pk
        )

    commands = _walkthrough()
    bob_steps = [w for w in commands if w[1] in ("approvals", "approve")]
    assert [w[1] for w in commands] == [
        "login",
        "request",
        "approvals",
        "approve",
        "status",
        "profile",
        "ssh",
        "done",
        "logout",
    ]
    for words in commands:
        if words in bob_steps:
            continue  # bob's, while dave waits
        words = [live_server.url if w == demo_url else pk(w) for w in words]
        if words[1] == "login":
            monkeypatch.setattr(
                login_commands, "time", FakeTime(confirm_in_dave_browser)
            )
        if words[1] == "request":
            monkeypatch.setattr(
                request_commands, "time", FakeTime(bob_approves, provision)
            )
        result = run(*words[1:], env=dave)
        assert result.exit_code == 0, (words, result.output)
        outputs[words[1]] = result.output.replace(f"#{number.get('pk')}", "#6")
    assert "as dave" in outputs["login"]
    assert "Requested #6" in outputs["request"] and "Active" in outputs["request"]
    assert re.search(r"#6 +dave wants payments as deploy", outputs["approvals"])
    assert "Approved #6 (dave)" in outputs["approve"]
    assert "payments as deploy" in outputs["status"]
    assert "opsgate-payments-deploy" in outputs["profile"]
    assert "--profile opsgate-payments-deploy" in outputs["ssh"]
    assert AccessRequest.objects.get(pk=number["pk"]).status == "revoked"
    assert "Signed out" in outputs["logout"]

"""Issue 21 item 8: /healthz checks the database and the shared cache; /metrics
serves Prometheus numbers computed from the database and the shared cache,
behind a bearer token; docker-compose.yml restarts and health-checks every
service."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts_app import counters
from accounts_app.models import AccessRequest, IamUser, OperationRole
from portal import ops
from provisioning import reconcile
from tests.helpers import grant

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-test-token-0123456789"


# --- /healthz ---------------------------------------------------------------------


def test_healthz_answers_200_with_each_check_and_needs_no_sign_in():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok"},
    }


def test_healthz_answers_by_any_host_name_and_over_plain_http(settings):
    """compose's check and a load balancer call the container by its own name,
    over HTTP, in production too."""
    settings.ALLOWED_HOSTS = ["opsgate.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/healthz", HTTP_HOST="web:8000")
    assert response.status_code == 200
    assert Client().get("/", HTTP_HOST="web:8000").status_code == 400


def test_healthz_is_503_naming_the_database_when_it_fails(monkeypatch):
    class Down:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(ops, "connection", Down())
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "checks": {"database": "error: OperationalError", "cache": "ok"},
    }


def test_healthz_is_503_naming_the_cache_when_redis_is_unreachable(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("error: ")


# --- /metrics ---------------------------------------------------------------------


def scrape(token=TOKEN, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get("/metrics", **headers, **extra)


def samples(response) -> dict:
    """{(name, frozenset(labels)): value} of a scrape."""
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def test_metrics_are_off_while_no_token_is_set(settings):
    settings.OPSGATE_METRICS_TOKEN = ""
    assert scrape().status_code == 404
    assert scrape(token=None).status_code == 404


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_metrics_need_the_bearer_token(settings, token):
    settings.OPSGATE_METRICS_TOKEN = TOKEN
    response = scrape(token=token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"opsgate_" not in response.content


def test_metrics_show_backlog_errors_latency_sign_in_failures_and_reconciles(
    settings, account, carol, dave, bob, deploy_role
):
    settings.OPSGATE_METRICS_TOKEN = TOKEN
    now = timezone.now()
    # A grant approved and not yet provisioned: its role is behind, asked for
    # 10 minutes ago.
    pending = grant(carol, deploy_role, bob)
    OperationRole.objects.filter(pk=deploy_role.pk).update(
        sync_requested_at=now - timedelta(minutes=10)
    )
    # dave's IAM user stopped by a permanent error.
    IamUser.objects.filter(pk=dave.pk).update(
        error_is_permanent=True, last_error="AccessDenied"
    )
    # Two grants that became active 90 s and 20 min after approval.
    for req, seconds in ((pending, 90),):
        AccessRequest.objects.filter(pk=req.pk).update(
            decided_at=now - timedelta(seconds=seconds + 5),
            provisioned_at=now - timedelta(seconds=5),
        )
    # Two wrong passwords, counted by the shared cache.
    for _ in range(2):
        Client().post(
            "/accounts/login/",
            {"login": carol.user.email, "password": "not-her-password"},
        )
    counters.value_set(reconcile.reconcile_seconds_key(account.pk), 12.5)

    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    got = samples(response)
    name = account.name
    assert (
        got[("opsgate_sync_behind", frozenset({("account", name), ("kind", "role")}))]
        == 1
    )
    assert (
        got[
            (
                "opsgate_sync_errors",
                frozenset({("account", name), ("kind", "iam_user")}),
            )
        ]
        == 1
    )
    assert (
        got[("opsgate_sync_errors", frozenset({("account", name), ("kind", "role")}))]
        == 0
    )
    age = got[("opsgate_sync_oldest_pending_seconds", frozenset({("account", name)}))]
    assert 590 <= age <= 700
    latency = "opsgate_approval_to_active_seconds"
    assert got[(f"{latency}_bucket", frozenset({("le", "60.0")}))] == 0
    assert got[(f"{latency}_bucket", frozenset({("le", "120.0")}))] == 1
    assert got[(f"{latency}_bucket", frozenset({("le", "+Inf")}))] == 1
    assert 89 <= got[(f"{latency}_gsum", frozenset())] <= 91
    assert got[("opsgate_sign_in_failures_total", frozenset())] == 2
    assert (
        got[("opsgate_reconcile_duration_seconds", frozenset({("account", name)}))]
        == 12.5
    )
    assert (
        "opsgate_reconcile_last_timestamp_seconds",
        frozenset({("account", name)}),
    ) in got


def test_a_reconcile_records_its_duration(settings, aws_env, account):
    from provisioning import sync

    sync.account_baseline_sync(account_id=account.pk)
    reconcile.reconcile_account(account)
    key = reconcile.reconcile_seconds_key(account.pk)
    assert counters.values_read([key])[key] > 0


# --- docker-compose.yml -----------------------------------------------------------


def test_every_compose_service_restarts_and_has_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis"}
    for name, service in services.items():  # `<<: *opsgate` merged by the loader
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check.get("interval") and check.get("retries"), name


def test_the_worker_health_check_pings_its_own_node():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = " ".join(compose["services"]["worker"]["healthcheck"]["test"])
    assert "inspect ping" in test and "celery@$$HOSTNAME" in test


@pytest.mark.worker
def test_the_worker_health_check_passes_while_it_runs_and_fails_once_it_is_gone(
    tmp_path,
):
    """The compose health check command itself, against a real worker named
    as in the container (celery@<hostname>), then with that worker stopped."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from tests.workers import database_url

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, command = compose["services"]["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$").replace(
        "celery ", f"{sys.executable} -m celery ", 1
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "HOSTNAME": socket.gethostname(),
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def check() -> int:
            return subprocess.run(
                ["sh", "-c", command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=60,
            ).returncode

        deadline = 60
        import time

        started = time.monotonic()
        while check() != 0:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() - started < deadline, "the worker never answered"
            time.sleep(1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    assert check() != 0

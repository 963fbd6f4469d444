"""Production settings: `check --deploy` is clean, and missing secrets stop
start-up with a message that says what to set."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "OPSGATE_PRODUCTION": "true",
    "DJANGO_SECRET_KEY": "x9" * 30 + "-not-a-real-secret-but-long-and-random-enough",
    "DJANGO_ALLOWED_HOSTS": "opsgate.example.com",
    # A cache every process shares (production refuses a per-process one);
    # `check` does not connect to it.
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_refuses_to_start():
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "Set the environment variable DJANGO_SECRET_KEY" in result.stderr


def test_production_without_allowed_hosts_refuses_to_start():
    env = {**PRODUCTION, "DJANGO_ALLOWED_HOSTS": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr

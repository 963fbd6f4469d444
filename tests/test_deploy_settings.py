"""Production settings: `check --deploy` is clean, and missing secrets stop
start-up with a message that says what to set."""

import json
import os
import subprocess
import sys
from pathlib import Path

from provisioning import policies, service_policy

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "OPSGATE_PRODUCTION": "true",
    "DJANGO_SECRET_KEY": "x9" * 30 + "-not-a-real-secret-but-long-and-random-enough",
    "DJANGO_ALLOWED_HOSTS": "opsgate.example.com",
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


def test_the_policy_files_in_deploy_match_what_opsgate_generates():
    service = json.loads((ROOT / "deploy/iam/opsgate-service-policy.json").read_text())
    assert service == service_policy.opsgate_service_policy(
        account_id="111122223333",
        path="/opsgate/",
        prefix="opsgate-",
        group_name="opsgate-operators",
        boundary_name="opsgate-OperationRoleBoundary",
        user_boundary_name="opsgate-OperatorBoundary",
    )
    boundary = json.loads(
        (ROOT / "deploy/iam/operation-role-boundary.json").read_text()
    )
    assert boundary == policies.role_boundary_policy()
    user_boundary = json.loads(
        (ROOT / "deploy/iam/operator-user-boundary.json").read_text()
    )
    assert user_boundary == policies.user_boundary_policy(
        account_id="111122223333", path="/opsgate/"
    )


def test_the_boundaries_template_in_deploy_matches_what_opsgate_generates():
    from provisioning import boundaries

    template = json.loads(
        (ROOT / "deploy/cloudformation/opsgate-boundaries.json").read_text()
    )
    assert template == boundaries.cloudformation_template(
        path="/opsgate/",
        role_boundary_name="opsgate-OperationRoleBoundary",
        user_boundary_name="opsgate-OperatorBoundary",
    )

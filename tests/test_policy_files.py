"""The policy documents and the template under deploy/ are what opsgate
generates: the reviewed, committed form of the service policy and both
permissions boundaries, so a change to any of them shows in review."""

import json
from pathlib import Path

from provisioning import policies, service_policy

ROOT = Path(__file__).resolve().parents[1]


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

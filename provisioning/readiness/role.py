"""The role, read back (GetRole): it trusts the person with the MFA and
session-name conditions of provisioning.policies.trust_policy, and has its
tags, policies and permissions boundary."""

from typing import Any

from accounts_app.models import AccessRequest, OperationRole
from provisioning import aws, baseline, policies
from provisioning.aws import AwsError, PermanentError, aws_action
from provisioning.iam import parse_document
from provisioning.readiness.checks import Check, failed_call, person_arn


def _trust_problem(document: Any, person_arn: str) -> str:
    """ "" when the trust lets the person in with the conditions opsgate
    writes (provisioning.policies.trust_policy), else what is wrong."""
    expected = policies.trust_policy([person_arn])["Statement"]
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    allow = next((s for s in statements if s.get("Sid") == expected[0]["Sid"]), None)
    if allow is None:
        return "The role's trust has no statement for opsgate's operators."
    principals = allow.get("Principal", {}).get("AWS", [])
    if isinstance(principals, str):
        principals = [principals]
    if person_arn not in principals:
        return f"The role's trust does not list {person_arn.rsplit('/', 1)[-1]}."
    if not policies.same_document(
        {k: allow.get(k) for k in ("Effect", "Action", "Condition")},
        {k: expected[0][k] for k in ("Effect", "Action", "Condition")},
    ):
        return (
            "The role's trust lists you without the conditions opsgate writes "
            "(MFA present, session named after your user)."
        )
    if not any(policies.same_document(s, expected[1]) for s in statements):
        return "The role's trust lacks the deny of session tags."
    return ""


def _role_read(role: OperationRole) -> tuple[dict, set[str]]:
    """GetRole's Role and the attached policies' ARNs."""
    iam = aws.client("iam", role.account)
    with aws_action("iam:GetRole"):
        found = iam.get_role(RoleName=role.role_name)["Role"]
    with aws_action("iam:ListAttachedRolePolicies"):
        attached = {
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=role.role_name)[
                "AttachedPolicies"
            ]
        }
    return found, attached


def role_checks(
    grant: AccessRequest, *, recent: bool, reads: dict | None = None
) -> list[Check]:
    """`reads`: the role's reads by role id, shared by the grants of one
    task (the same role is read once); each grant's trust is judged on its
    own person."""
    role = grant.role
    reads = {} if reads is None else reads
    if role.pk not in reads:
        try:
            reads[role.pk] = _role_read(role)
        except AwsError as exc:
            reads[role.pk] = exc
    try:
        if isinstance(reads[role.pk], AwsError):
            raise reads[role.pk]
        found, attached = reads[role.pk]
    except PermanentError as exc:
        if exc.code != "NoSuchEntity":
            return [failed_call("role", "The role", exc)]
        return [
            Check(
                "role",
                "The role",
                False,
                f"The role {role.role_name} does not exist in account "
                f"{role.account.account_id}.",
                fix="opsgate creates it again; an admin sees the role's sync "
                "state on the project page.",
                propagating=recent,
            )
        ]
    except AwsError as exc:
        return [failed_call("role", "The role", exc)]
    checks = []
    problem = _trust_problem(
        parse_document(found.get("AssumeRolePolicyDocument")), person_arn(grant)
    )
    checks.append(
        Check(
            "trust",
            "The role's trust",
            not problem,
            problem
            or "The trust lists you, with MFA and your user name as session name.",
            fix=""
            if not problem
            else "opsgate rewrites the trust on its next sync; an admin can retry "
            "the role's sync on the project page.",
            propagating=recent,
        )
    )
    tags = policies.tag_dict(found.get("Tags"))
    wanted = policies.tag_dict(
        policies.role_tags(project=role.project.name, os_user=role.os_user)
    )
    wrong = sorted(k for k, v in wanted.items() if tags.get(k) != v)
    missing = sorted(set(baseline.role_policy_arns(role.account)) - attached)
    boundary = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    problems = []
    if wrong:
        problems.append(f"tags {', '.join(wrong)} differ")
    if missing:
        names = ", ".join(a.rsplit("/", 1)[-1] for a in missing)
        problems.append(f"policies {names} are not attached")
    if boundary != baseline.boundary_arn(role.account):
        problems.append("the permissions boundary is not on")
    checks.append(
        Check(
            "role_setup",
            "The role's tags, policies and boundary",
            not problems,
            "The role has its tags, policies and boundary."
            if not problems
            else f"The role {role.role_name}: {'; '.join(problems)}.",
            fix=""
            if not problems
            else "An admin reconciles the account (Drift page); opsgate repairs "
            "what it owns.",
            propagating=recent,
        )
    )
    return checks

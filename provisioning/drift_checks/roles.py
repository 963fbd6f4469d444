"""Operation roles as AWS holds them, against the database: above all their
trust (who may assume them)."""

from datetime import datetime

from django.db.models import Model

from accounts_app import trust
from accounts_app.models import OperationRole
from provisioning import baseline, iam, policies, sync
from provisioning.drift_checks.compare import (
    _attachment_findings,
    _boundary_finding,
    _tag_findings,
)
from provisioning.drift_checks.findings import Finding, Report
from provisioning.drift_checks.reading import _ours, quiet
from provisioning.models import DriftKind


def _allow_principals(document: dict) -> list[str]:
    found = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        if principal == "*":
            found.append("*")
            continue
        values = principal.get("AWS", []) if isinstance(principal, dict) else []
        found += [values] if isinstance(values, str) else list(values)
    return found


def _allows_tag_session(document: dict) -> bool:
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(a.lower() in ("sts:tagsession", "sts:*", "*") for a in actions):
            return True
    return False


def _trust_findings(name: str, actual: dict, expected: dict, obj: Model):
    if policies.same_document(actual, expected):
        return []
    principals = _allow_principals(actual)
    orphans = sorted(p for p in principals if p != "*" and not p.startswith("arn:"))
    findings = []
    base = {"expected": expected, "actual": actual, "obj": obj}
    if orphans:
        findings.append(
            Finding(
                "role",
                name,
                DriftKind.ORPHAN_PRINCIPAL,
                f"principal ids of deleted principals: {', '.join(orphans)}",
                **base,
            )
        )
    if "*" in principals or _allows_tag_session(actual):
        findings.append(
            Finding(
                "role",
                name,
                DriftKind.TRUST_ESCALATION,
                "the trust allows sts:TagSession or any principal",
                **base,
            )
        )
    if not findings:
        findings.append(
            Finding("role", name, DriftKind.TRUST_EDITED, "trust edited", **base)
        )
    return findings


def check_roles(
    roles: list[OperationRole], state: dict, since: datetime, report: Report
) -> list[Finding]:
    findings: list[Finding] = []
    holders = trust.grant_holders([role.pk for role in roles])  # one query
    for role in roles:
        if quiet(role, since):
            report.skipped.append(f"role {role.role_name}")
            continue
        name = role.role_name
        principals = trust.role_principals(role, holders=holders[role.pk])
        aws_role = state["roles"].get(name.lower())
        if aws_role is None:
            if principals:
                findings.append(
                    Finding("role", name, DriftKind.MISSING, "deleted", obj=role)
                )
            continue
        if not _ours(aws_role):
            findings.append(
                Finding(
                    "role",
                    name,
                    DriftKind.NOT_OWNED,
                    "lacks opsgate's path or tag",
                    repairable=False,
                )
            )
            continue
        if not principals:
            findings.append(
                Finding("role", name, DriftKind.EXTRA, "no active grant", obj=role)
            )
            continue
        findings += _trust_findings(
            name,
            iam.parse_document(aws_role["AssumeRolePolicyDocument"]),
            policies.trust_policy(principals),
            role,
        )
        findings += _boundary_finding(
            "role", name, aws_role, baseline.boundary_arn(role.account), role
        )
        findings += _tag_findings(
            "role",
            name,
            aws_role.get("Tags"),
            policies.role_tags(project=role.project.name, os_user=role.os_user),
            role,
        )
        findings += _attachment_findings(
            "role",
            name,
            aws_role,
            baseline.role_policy_arns(role.account),
            role,
            allowed_inline=(sync.revoked_sessions_policy_name(),),
            inline_key="RolePolicyList",
        )
    return findings

"""IAM users as AWS holds them, against the database."""

from datetime import datetime

from accounts_app.models import IamUser, IamUserState
from provisioning import baseline, policies
from provisioning.drift_checks.compare import (
    _attachment_findings,
    _boundary_finding,
    _tag_findings,
)
from provisioning.drift_checks.findings import Finding, Report
from provisioning.drift_checks.reading import _conf, _ours, quiet
from provisioning.models import DriftKind


def check_users(
    people: list[IamUser], state: dict, since: datetime, report: Report
) -> list[Finding]:
    findings: list[Finding] = []
    group_name = _conf("GROUP_NAME")
    for person in people:
        if quiet(person, since):
            report.skipped.append(f"user {person.name}")
            continue
        aws_user = state["users"].get(person.name.lower())
        if person.state != IamUserState.ACTIVE:
            if (
                aws_user
                and _ours(aws_user)
                and person.unique_id
                and aws_user.get("UserId") == person.unique_id
            ):
                findings.append(
                    Finding(
                        "user", person.name, DriftKind.EXTRA, "offboarded", obj=person
                    )
                )
            continue
        if aws_user is None:
            findings.append(
                Finding("user", person.name, DriftKind.MISSING, "deleted", obj=person)
            )
            continue
        if not _ours(aws_user):
            findings.append(
                Finding(
                    "user",
                    person.name,
                    DriftKind.NOT_OWNED,
                    "lacks opsgate's path or tag",
                    repairable=False,
                )
            )
            continue
        findings += _boundary_finding(
            "user",
            person.name,
            aws_user,
            baseline.user_boundary_arn(person.account),
            person,
        )
        findings += _tag_findings(
            "user",
            person.name,
            aws_user.get("Tags"),
            policies.user_tags(email=person.email),
            person,
        )
        if group_name not in aws_user.get("GroupList", []):
            findings.append(
                Finding(
                    "user",
                    person.name,
                    DriftKind.GROUP_MEMBER_MISSING,
                    f"not in {group_name}",
                    obj=person,
                )
            )
        findings += _attachment_findings(
            "user", person.name, aws_user, [], person, inline_key="UserPolicyList"
        )
    return findings

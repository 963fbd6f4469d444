"""Comparisons every kind of object shares: its tags, its attached policies,
its permissions boundary."""

from typing import Any

from django.db.models import Model

from provisioning import iam, policies
from provisioning.drift_checks.findings import Finding
from provisioning.drift_checks.reading import _reserved
from provisioning.models import DriftKind


def _tag_findings(
    object_type: str, name: str, actual: list | None, desired: list, obj: Model
) -> list[Finding]:
    have = {k.lower(): (k, v) for k, v in policies.tag_dict(actual).items()}
    want = policies.tag_dict(desired)
    changed = {k: v for k, v in want.items() if have.get(k.lower()) != (k, v)}
    findings = []
    if changed:
        findings.append(
            Finding(
                object_type,
                name,
                DriftKind.TAG_CHANGED,
                f"tags {', '.join(sorted(changed))} differ",
                expected=changed,
                actual={
                    have[k.lower()][0]: have[k.lower()][1]
                    for k in changed
                    if k.lower() in have
                },
                obj=obj,
            )
        )
    wanted = {k.lower() for k in want}
    extra = {k: v for k, v in have.values() if k.lower() not in wanted}
    reserved = sorted(k for k in extra if _reserved(k))
    if reserved:
        findings.append(
            Finding(
                object_type,
                name,
                DriftKind.TAG_EXTRA,
                f"extra tags {', '.join(reserved)}",
                actual={k: extra[k] for k in reserved},
                obj=obj,
                fix=lambda client: iam.untag(client, object_type, name, reserved),
            )
        )
    foreign = sorted(k for k in extra if not _reserved(k))
    if foreign and object_type == "role":
        # Role tags become principal tags in ABAC; reported, but a key opsgate
        # does not own is left for a person to judge.
        findings.append(
            Finding(
                object_type,
                name,
                DriftKind.TAG_FOREIGN,
                f"tags opsgate does not set: {', '.join(foreign)} (not removed)",
                actual={k: extra[k] for k in foreign},
                repairable=False,
            )
        )
    return findings


def _attachment_findings(
    object_type: str,
    name: str,
    detail: dict,
    expected_arns: list[str],
    obj: Model,
    *,
    allowed_inline: tuple[str, ...] = (),
    inline_key: str,
) -> list[Finding]:
    attached = {p["PolicyArn"] for p in detail.get("AttachedManagedPolicies", [])}
    missing = sorted(set(expected_arns) - attached)
    extra = sorted(attached - set(expected_arns))
    inline = sorted(
        p["PolicyName"]
        for p in detail.get(inline_key, [])
        if p["PolicyName"] not in allowed_inline
    )
    findings = []
    if missing:
        findings.append(
            Finding(
                object_type,
                name,
                DriftKind.POLICY_MISSING,
                f"policies detached: {', '.join(missing)}",
                expected=missing,
                obj=obj,
            )
        )
    if extra or inline:

        def remove(client: Any) -> None:
            iam.remove_policies(client, object_type, name, arns=extra, inline=inline)

        findings.append(
            Finding(
                object_type,
                name,
                DriftKind.POLICY_EXTRA,
                f"extra policies: {', '.join(extra + inline)}",
                actual={"attached": extra, "inline": inline},
                obj=obj,
                fix=remove,
            )
        )
    return findings


def _boundary_finding(
    object_type: str, name: str, detail: dict, expected: str, obj: Model
) -> list[Finding]:
    actual = (detail.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if actual == expected:
        return []
    return [
        Finding(
            object_type,
            name,
            DriftKind.BOUNDARY,
            f"permissions boundary {actual}, not {expected}"
            if actual
            else "no permissions boundary",
            expected=expected,
            actual=actual,
            obj=obj,
        )
    ]

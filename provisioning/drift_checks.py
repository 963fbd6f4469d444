"""Reconcile's reading and comparing: one paginated
GetAccountAuthorizationDetails reads every user, group, role and
customer-managed policy of an account; each object opsgate owns is compared
with the database into Findings (provisioning.reconcile records and repairs
them). Objects changed or synced within OPSGATE_RECONCILE_QUIET_SECONDS are
left alone: IAM reads are eventually consistent, and the worker is on them.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Model

from accounts_app import trust
from accounts_app.models import AwsAccount, IamUser, IamUserState, OperationRole
from provisioning import baseline, iam, policies, sync
from provisioning.aws import aws_action
from provisioning.models import DriftKind

log = logging.getLogger(__name__)

GAAD_FILTER = ["User", "Group", "Role", "LocalManagedPolicy"]


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


@dataclass
class Finding:
    object_type: str
    name: str
    kind: str
    detail: str
    expected: Any = None
    actual: Any = None
    repairable: bool = True
    # The database object whose sync repairs it (AwsAccount, IamUser, role).
    obj: Model | None = None
    # A removal the sync does not do, run before it: fix(iam_client).
    fix: Callable[[Any], None] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.object_type, self.name, self.kind)


@dataclass
class Report:
    account: str
    found: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Stopped by a permanent error, no drift seen: their sync tried again.
    retried: list[str] = field(default_factory=list)
    # Another reconcile of the account was running: this one did nothing.
    busy: bool = False

    def summary(self) -> dict[str, Any]:
        summary = {
            "account": self.account,
            "drift": [f"{f.object_type} {f.name}: {f.kind}" for f in self.found],
            "repaired": self.repaired,
            "retried": self.retried,
            "errors": self.errors,
            "skipped_recent": self.skipped,
        }
        if self.busy:
            summary["busy"] = True
        return summary


# --- Reading ------------------------------------------------------------------


def read_account(client: Any) -> dict[str, dict[str, dict]]:
    """Users, groups and roles by lower-cased name (IAM names are unique
    regardless of case), customer-managed policies by ARN."""
    state: dict[str, dict[str, dict]] = {
        "users": {},
        "groups": {},
        "roles": {},
        "policies": {},
    }
    with aws_action("iam:GetAccountAuthorizationDetails"):
        paginator = client.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=GAAD_FILTER):
            for user in page.get("UserDetailList", []):
                state["users"][user["UserName"].lower()] = user
            for group in page.get("GroupDetailList", []):
                state["groups"][group["GroupName"].lower()] = group
            for role in page.get("RoleDetailList", []):
                state["roles"][role["RoleName"].lower()] = role
            for policy in page.get("Policies", []):
                state["policies"][policy["Arn"]] = policy
    return state


def _default_document(policy: dict) -> Any:
    for version in policy.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return iam.parse_document(version["Document"])
    return None


def _ours(obj: dict) -> bool:
    return obj.get("Path") == _conf("IAM_PATH") and policies.is_managed(obj.get("Tags"))


def _reserved(key: str) -> bool:
    lower = key.lower()
    return lower in {k.lower() for k in policies.RESERVED_TAG_KEYS} or (
        lower.startswith(policies.RESERVED_TAG_PREFIX)
    )


def quiet(obj: Any, since: datetime) -> bool:
    """Changed, pending or synced recently: the worker owns it for now. One
    stopped by a permanent error is not pending: nobody works on it."""
    return (
        (obj.applied_version < obj.desired_version and not obj.error_is_permanent)
        or (obj.last_synced_at is not None and obj.last_synced_at > since)
        or (obj.sync_requested_at is not None and obj.sync_requested_at > since)
    )


# --- Comparing ----------------------------------------------------------------


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


def check_baseline(account: AwsAccount, state: dict) -> list[Finding]:
    findings: list[Finding] = []
    group_name = _conf("GROUP_NAME")
    group = state["groups"].get(group_name.lower())
    if not account.holds_people:
        pass  # a roles-only account has no operators group
    elif group is None:
        findings.append(
            Finding("group", group_name, DriftKind.MISSING, "deleted", obj=account)
        )
    elif group.get("Path") != _conf("IAM_PATH"):
        findings.append(
            Finding(
                "group",
                group_name,
                DriftKind.NOT_OWNED,
                "a group of that name outside opsgate's path",
                repairable=False,
            )
        )
    else:
        findings += _attachment_findings(
            "group",
            group_name,
            group,
            baseline.group_policy_arns(account),
            account,
            inline_key="GroupPolicyList",
        )
    findings += _check_boundary_policies(account, state)
    for name, document in baseline.baseline_documents(account).items():
        arn = policies.policy_arn(
            account_id=account.account_id,
            path=_conf("IAM_PATH"),
            name=name,
            partition=account.partition,
        )
        findings += _policy_findings(
            state["policies"].get(arn), name, document, account=account
        )
    return findings


def _policy_findings(
    policy: dict | None,
    name: str,
    document: dict,
    *,
    account: AwsAccount,
    missing: str = "deleted",
    differs: str = "",
    repairable: bool = True,
) -> list[Finding]:
    """A customer-managed policy deleted, or its default version not the
    document expected. `repairable` False: reported only (no object to fix)."""
    if policy is None:
        return [Finding("policy", name, DriftKind.MISSING, missing, obj=account)]
    current = _default_document(policy)
    if policies.same_document(current, document):
        return []
    owner = {"obj": account} if repairable else {"repairable": False}
    return [
        Finding(
            "policy",
            name,
            DriftKind.POLICY_DOCUMENT,
            f"default version {policy.get('DefaultVersionId')} differs{differs}",
            expected=document,
            actual=current,
            **owner,
        )
    ]


def _check_boundary_policies(account: AwsAccount, state: dict) -> list[Finding]:
    """The deployment's boundaries: a missing one stops the baseline (its sync
    records the error that says how to create it); a different document is
    reported only, since opsgate never writes them."""
    from provisioning import boundaries

    findings = []
    expected = boundaries.documents(
        account_id=account.account_id, partition=account.partition
    )
    arns = [
        baseline.boundary_arn(account),
        baseline.user_boundary_arn(account),
    ]
    needed = set(baseline.boundary_arns(account))
    for (name, document), arn in zip(expected.items(), arns, strict=True):
        if arn not in needed:
            continue
        findings += _policy_findings(
            state["policies"].get(arn),
            name,
            document,
            account=account,
            missing=f"deleted; the deployment creates it ({boundaries.COMMAND})",
            differs=(
                " from this release's boundary; opsgate never edits it: run "
                f"{boundaries.COMMAND} to update it"
            ),
            repairable=False,
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


def check_unknown(
    account: AwsAccount, people: list[IamUser], roles: list[OperationRole], state
) -> list[Finding]:
    """Users and roles that carry opsgate's marks but the database does not
    know: reported, never deleted (a person decides)."""
    known_users = {p.name.lower() for p in people}
    known_roles = {r.role_name.lower() for r in roles}
    findings = []
    for kind, known, objects, key in (
        ("user", known_users, state["users"], "UserName"),
        ("role", known_roles, state["roles"], "RoleName"),
    ):
        for lower, obj in objects.items():
            if lower not in known and _ours(obj):
                findings.append(
                    Finding(
                        kind,
                        obj[key],
                        DriftKind.UNEXPECTED,
                        "tagged ManagedBy=opsgate but unknown to the database",
                        repairable=False,
                    )
                )
    return findings


def _drift_key(object_type: str, name: str) -> tuple[str, str]:
    # The group and the policies are one database object: the account.
    if object_type in ("group", "policy"):
        return ("baseline", "")
    return (object_type, name.lower())


def _object_key(obj: Model) -> tuple[str, str]:
    if isinstance(obj, IamUser):
        return ("user", obj.name.lower())
    if isinstance(obj, OperationRole):
        return ("role", obj.role_name.lower())
    return ("baseline", "")


def stopped_without_drift(
    objects: list[Model], findings: list[Finding], since: datetime
) -> list[Model]:
    """Objects a permanent error stopped that were checked and show no drift:
    the cause may have gone (AWS may already be right), so their sync is
    tried again. Those with drift are repaired, which retries them too."""
    drifted = {_drift_key(f.object_type, f.name) for f in findings}
    return [
        obj
        for obj in objects
        if obj.error_is_permanent
        and not quiet(obj, since)
        and _object_key(obj) not in drifted
    ]


def note_missing_roles(findings: list[Finding], now: datetime) -> None:
    """Grants on a role found deleted are not shown as active until a sync of
    the role succeeds."""
    missing = [
        f.obj.pk
        for f in findings
        if f.kind == DriftKind.MISSING and isinstance(f.obj, OperationRole)
    ]
    OperationRole.objects.filter(pk__in=missing, missing_since__isnull=True).update(
        missing_since=now
    )

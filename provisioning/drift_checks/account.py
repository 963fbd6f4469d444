"""An account's baseline as AWS holds it: the managed policies, the operators
group, the permissions boundaries; and opsgate's objects the database does not
know."""

from accounts_app.models import AwsAccount, IamUser, OperationRole
from provisioning import baseline, policies
from provisioning.drift_checks.compare import _attachment_findings
from provisioning.drift_checks.findings import Finding
from provisioning.drift_checks.reading import _conf, _default_document, _ours
from provisioning.models import DriftKind


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

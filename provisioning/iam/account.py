"""An account's own objects: opsgate's managed policies, the operators group,
and the account summary (its quotas)."""

import json
from typing import Any

from provisioning import policies
from provisioning.aws import DependencyMissing, PermanentError, aws_action
from provisioning.iam.common import (
    MAX_POLICY_VERSIONS,
    NO_SUCH_ENTITY,
    _document,
    _exists,
    _not_ours,
)


def ensure_managed_policy(
    iam: Any,
    *,
    arn: str,
    name: str,
    path: str,
    document: dict,
    description: str = "Managed by opsgate; edits are overwritten.",
    tags: list[dict[str, str]] | None = None,
) -> bool:
    """Create the policy (tagged ManagedBy=opsgate unless `tags` says
    otherwise), or add a default version when its document differs.
    Returns True when it wrote something."""
    try:
        with aws_action("iam:GetPolicy"):
            policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        with aws_action("iam:CreatePolicy"):
            iam.create_policy(
                PolicyName=name,
                Path=path,
                PolicyDocument=json.dumps(document),
                Description=description,
                Tags=policies.managed_tags() if tags is None else tags,
            )
        return True
    if policy.get("Path") != path:
        raise _not_ours("policy", name)
    with aws_action("iam:GetPolicyVersion"):
        current = iam.get_policy_version(
            PolicyArn=arn, VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
    if policies.same_document(_document(current), document):
        return False
    with aws_action("iam:ListPolicyVersions"):
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min(
            (v for v in versions if not v["IsDefaultVersion"]),
            key=lambda v: v["CreateDate"],
        )
        with aws_action("iam:DeletePolicyVersion"):
            iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
    with aws_action("iam:CreatePolicyVersion"):
        iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
        )
    return True


def policy_exists(iam: Any, *, arn: str) -> bool:
    return _exists("iam:GetPolicy", iam.get_policy, PolicyArn=arn)


def ensure_group(iam: Any, *, name: str, path: str, policy_arns: list[str]) -> None:
    try:
        with aws_action("iam:GetGroup"):
            group = iam.get_group(GroupName=name, MaxItems=1)["Group"]
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        with aws_action("iam:CreateGroup"):
            group = iam.create_group(GroupName=name, Path=path)["Group"]
    # Groups cannot be tagged in IAM: the path is what marks them as ours.
    if group.get("Path") != path:
        raise _not_ours("group", name)
    with aws_action("iam:ListAttachedGroupPolicies"):
        attached = {
            p["PolicyArn"]
            for p in iam.list_attached_group_policies(GroupName=name)[
                "AttachedPolicies"
            ]
        }
    for arn in policy_arns:
        if arn not in attached:
            try:
                with aws_action("iam:AttachGroupPolicy"):
                    iam.attach_group_policy(GroupName=name, PolicyArn=arn)
            except DependencyMissing as exc:
                if ":iam::aws:policy/" in arn:
                    # An AWS-managed policy missing is not something opsgate
                    # can restore: waiting will not help.
                    raise PermanentError(
                        exc.message, action=exc.action, code=exc.code
                    ) from exc
                raise


def group_exists(iam: Any, *, name: str) -> bool:
    """Whether the group is there (whoever's it is): one GetGroup."""
    try:
        with aws_action("iam:GetGroup"):
            iam.get_group(GroupName=name, MaxItems=1)
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        return False
    return True


def account_summary(iam: Any) -> dict[str, int]:
    with aws_action("iam:GetAccountSummary"):
        return iam.get_account_summary()["SummaryMap"]

"""Removals reconcile needs (the sync only adds): tags, and policies attached
to or inlined in an opsgate user, group or role."""

from typing import Any

from provisioning.aws import aws_action
from provisioning.iam.common import _ignore_missing


def untag(iam: Any, kind: str, name: str, keys: list[str]) -> None:
    """Remove tags from an opsgate user or role (kind "user" or "role")."""
    if kind == "user":
        with aws_action("iam:UntagUser"):
            iam.untag_user(UserName=name, TagKeys=keys)
    else:
        with aws_action("iam:UntagRole"):
            iam.untag_role(RoleName=name, TagKeys=keys)


def remove_policies(
    iam: Any, kind: str, name: str, *, arns: list[str], inline: list[str]
) -> None:
    """Detach managed policies and delete inline ones from an opsgate user,
    group or role; one already gone is fine."""
    target = {"user": "User", "group": "Group", "role": "Role"}[kind]
    name_arg = {f"{target}Name": name}
    for arn in arns:
        operation = f"detach_{kind}_policy"
        _ignore_missing(
            f"iam:Detach{target}Policy",
            getattr(iam, operation),
            PolicyArn=arn,
            **name_arg,
        )
    for policy_name in inline:
        _ignore_missing(
            f"iam:Delete{target}Policy",
            getattr(iam, f"delete_{kind}_policy"),
            PolicyName=policy_name,
            **name_arg,
        )

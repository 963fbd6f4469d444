"""Operation roles: made or fixed with their trust, tags, boundary and
policies; their inline policies; closed (trusting nobody) and deleted."""

import json
from typing import Any

from provisioning import policies
from provisioning.aws import PermanentError, aws_action
from provisioning.iam.common import (
    ALREADY_EXISTS,
    NO_SUCH_ENTITY,
    ROLE_TAG_KEYS,
    _document,
    _get_owned,
    _tag_changes,
)


def ensure_role(
    iam: Any,
    *,
    name: str,
    path: str,
    trust: dict,
    tags: list[dict],
    max_session_duration: int,
    policy_arns: list[str],
    description: str,
    boundary_arn: str,
    current: dict | None | bool = False,
) -> dict:
    """A grant on an existing role costs GetRole, ListAttachedRolePolicies and one
    UpdateAssumeRolePolicy; an unchanged role costs no write. `current`: the
    role as role_get just read it (None: missing), so it is not read again."""
    role = _get_owned(iam, "role", name, path) if current is False else current
    if role is None:
        try:
            with aws_action("iam:CreateRole"):
                role = iam.create_role(
                    RoleName=name,
                    Path=path,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=description,
                    MaxSessionDuration=max_session_duration,
                    PermissionsBoundary=boundary_arn,
                    Tags=tags,
                )["Role"]
        except PermanentError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            return ensure_role(
                iam,
                name=name,
                path=path,
                trust=trust,
                tags=tags,
                max_session_duration=max_session_duration,
                policy_arns=policy_arns,
                description=description,
                boundary_arn=boundary_arn,
            )
        for arn in policy_arns:
            with aws_action("iam:AttachRolePolicy"):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return role
    if not policies.same_document(_document(role["AssumeRolePolicyDocument"]), trust):
        with aws_action("iam:UpdateAssumeRolePolicy"):
            iam.update_assume_role_policy(
                RoleName=name, PolicyDocument=json.dumps(trust)
            )
    to_set, to_remove = _tag_changes(role.get("Tags"), tags, ROLE_TAG_KEYS)
    if to_remove:
        with aws_action("iam:UntagRole"):
            iam.untag_role(RoleName=name, TagKeys=to_remove)
    if to_set:
        with aws_action("iam:TagRole"):
            iam.tag_role(RoleName=name, Tags=to_set)
    current_boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    if current_boundary != boundary_arn:
        with aws_action("iam:PutRolePermissionsBoundary"):
            iam.put_role_permissions_boundary(
                RoleName=name, PermissionsBoundary=boundary_arn
            )
    if role.get("MaxSessionDuration") != max_session_duration:
        with aws_action("iam:UpdateRole"):
            iam.update_role(RoleName=name, MaxSessionDuration=max_session_duration)
    with aws_action("iam:ListAttachedRolePolicies"):
        attached = {
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        }
    for arn in policy_arns:
        if arn not in attached:
            with aws_action("iam:AttachRolePolicy"):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return role


def ensure_role_inline_policy(
    iam: Any, *, role: str, name: str, document: dict | None
) -> bool:
    """Make the role's inline policy `name` hold `document`; None deletes it.
    Returns True when it wrote something."""
    try:
        with aws_action("iam:GetRolePolicy"):
            current = _document(
                iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            )
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        current = None
    if document is None:
        if current is None:
            return False
        with aws_action("iam:DeleteRolePolicy"):
            iam.delete_role_policy(RoleName=role, PolicyName=name)
        return True
    if current is not None and policies.same_document(current, document):
        return False
    with aws_action("iam:PutRolePolicy"):
        iam.put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document)
        )
    return True


def role_get(iam: Any, *, name: str, path: str) -> dict | None:
    """opsgate's role `name` (GetRole's Role), None when there is none."""
    return _get_owned(iam, "role", name, path)


def role_close(
    iam: Any, *, name: str, path: str, current: dict | None | bool = False
) -> dict | None:
    """Before a role with no principals left is deleted: its trust lets nobody
    in (policies.trust_nobody_policy), so a deletion that fails part-way
    leaves it closed. Returns the role, None when there is none. `current`:
    the role as role_get just read it."""
    role = _get_owned(iam, "role", name, path) if current is False else current
    if role is None:
        return None
    nobody = policies.trust_nobody_policy()
    if not policies.same_document(_document(role["AssumeRolePolicyDocument"]), nobody):
        with aws_action("iam:UpdateAssumeRolePolicy"):
            iam.update_assume_role_policy(
                RoleName=name, PolicyDocument=json.dumps(nobody)
            )
    return role


def delete_role(
    iam: Any, *, name: str, path: str, current: dict | None | bool = False
) -> bool:
    """Delete a role that has no principals left (a trust policy needs one),
    its trust already closed (role_close). The managed policies go first, so
    the role's open sessions lose every permission before its inline deny of
    them has to go (DeleteRole needs it gone); a failure at any point leaves
    the role closed. `current`: the role as role_get just read it."""
    role = _get_owned(iam, "role", name, path) if current is False else current
    if role is None:
        return False
    with aws_action("iam:ListAttachedRolePolicies"):
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    for policy in attached:
        with aws_action("iam:DetachRolePolicy"):
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    with aws_action("iam:ListInstanceProfilesForRole"):
        profiles = iam.list_instance_profiles_for_role(RoleName=name)[
            "InstanceProfiles"
        ]
    if profiles:
        # opsgate never puts roles into instance profiles (it may not PassRole);
        # someone did by hand, and removing it is theirs to decide.
        names = ", ".join(p["InstanceProfileName"] for p in profiles)
        raise PermanentError(
            f"Role {name} has no grants left but is in instance profile(s) {names}; "
            "remove it from them by hand, then retry.",
            action="iam:DeleteRole",
            code="InstanceProfileAttached",
        )
    with aws_action("iam:ListRolePolicies"):
        inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
    for policy_name in inline:
        with aws_action("iam:DeleteRolePolicy"):
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    with aws_action("iam:DeleteRole"):
        iam.delete_role(RoleName=name)
    return True

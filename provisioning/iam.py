"""Converging IAM steps: each makes one AWS object match a document and is safe
to run again. Reads first, writes only what differs, and never touches an
object that is not opsgate's (path and ManagedBy=opsgate tag)."""

import json
import urllib.parse
from typing import Any

from provisioning import policies
from provisioning.aws import DependencyMissing, PermanentError, aws_action

NO_SUCH_ENTITY = "NoSuchEntity"
ALREADY_EXISTS = "EntityAlreadyExists"
DELETE_CONFLICT = "DeleteConflict"
MAX_POLICY_VERSIONS = 5


def _document(value: Any) -> Any:
    """IAM returns documents URL-encoded; botocore usually decodes them already."""
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


def parse_document(value: Any) -> Any:
    return _document(value)


def _not_ours(kind: str, name: str) -> PermanentError:
    return PermanentError(
        f"An IAM {kind} named {name} already exists and is not managed by opsgate "
        f"(it lacks the tag {policies.MANAGED_BY_KEY}={policies.MANAGED_BY_VALUE} "
        "or lies outside opsgate's path). Pick another name, or remove or adopt "
        "that one by hand.",
        action=f"iam:Get{kind.capitalize()}",
        code="NotManaged",
    )


def _tag_changes(
    current: list[dict[str, str]] | None,
    desired: list[dict[str, str]],
    owned: tuple[str, ...],
) -> tuple[list[dict[str, str]], list[str]]:
    """Tags to set and keys to remove, among the keys opsgate owns. IAM tag keys
    are unique case-insensitively, so they are compared that way."""
    have = {k.lower(): (k, v) for k, v in policies.tag_dict(current).items()}
    want = policies.tag_dict(desired)
    to_set = [
        {"Key": k, "Value": v} for k, v in want.items() if have.get(k.lower()) != (k, v)
    ]
    wanted_lower = {k.lower() for k in want}
    to_remove = [
        have[k.lower()][0]
        for k in owned
        if k.lower() in have and k.lower() not in wanted_lower
    ]
    # A key present with other casing must go before the right casing is set.
    to_remove += [
        have[t["Key"].lower()][0]
        for t in to_set
        if t["Key"].lower() in have and have[t["Key"].lower()][0] != t["Key"]
    ]
    return to_set, to_remove


# --- Policies and the group ---------------------------------------------------


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


def _exists(action: str, call: Any, **params: Any) -> bool:
    """Whether a Get call finds its object: False on NoSuchEntity, any other
    error raised as usual."""
    try:
        with aws_action(action):
            call(**params)
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        return False
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


# --- Users --------------------------------------------------------------------


USER_TAG_KEYS = (policies.MANAGED_BY_KEY, policies.EMAIL_KEY)
ROLE_TAG_KEYS = (policies.MANAGED_BY_KEY, policies.PROJECT_KEY, policies.RUN_AS_KEY)


_GETTERS = {
    "user": ("iam:GetUser", "get_user", "UserName", "User"),
    "role": ("iam:GetRole", "get_role", "RoleName", "Role"),
}


def _get_owned(iam: Any, kind: str, name: str, path: str) -> dict | None:
    """The IAM user or role named `name`; None when there is none. One that
    exists but is not opsgate's (path, ManagedBy tag) is a permanent error."""
    action, method, param, key = _GETTERS[kind]
    try:
        with aws_action(action):
            found = getattr(iam, method)(**{param: name})[key]
    except PermanentError as exc:
        if exc.code == NO_SUCH_ENTITY:
            return None
        raise
    if found.get("Path") != path or not policies.is_managed(found.get("Tags")):
        raise _not_ours(kind, name)
    return found


def user_exists(iam: Any, *, name: str) -> bool:
    """Whether an IAM user of that name is there (whoever's it is)."""
    return _exists("iam:GetUser", iam.get_user, UserName=name)


def ensure_user(
    iam: Any, *, name: str, path: str, tags: list[dict], group: str, boundary_arn: str
) -> dict:
    """CreateUser with its tags and permissions boundary in one call and
    AddUserToGroup (2 writes for a new person); for an existing user, fix the
    boundary, tags and membership only if they differ. The boundary comes
    first: a user never joins the group without it."""
    user = _get_owned(iam, "user", name, path)
    if user is None:
        try:
            with aws_action("iam:CreateUser"):
                user = iam.create_user(
                    UserName=name,
                    Path=path,
                    Tags=tags,
                    PermissionsBoundary=boundary_arn,
                )["User"]
        except PermanentError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            # Created by a run that died before recording it: converge below.
            return ensure_user(
                iam,
                name=name,
                path=path,
                tags=tags,
                group=group,
                boundary_arn=boundary_arn,
            )
        with aws_action("iam:AddUserToGroup"):
            iam.add_user_to_group(GroupName=group, UserName=name)
        return user
    current_boundary = (user.get("PermissionsBoundary") or {}).get(
        "PermissionsBoundaryArn"
    )
    if current_boundary != boundary_arn:
        with aws_action("iam:PutUserPermissionsBoundary"):
            iam.put_user_permissions_boundary(
                UserName=name, PermissionsBoundary=boundary_arn
            )
    to_set, to_remove = _tag_changes(user.get("Tags"), tags, USER_TAG_KEYS)
    if to_remove:
        with aws_action("iam:UntagUser"):
            iam.untag_user(UserName=name, TagKeys=to_remove)
    if to_set:
        with aws_action("iam:TagUser"):
            iam.tag_user(UserName=name, Tags=to_set)
    with aws_action("iam:ListGroupsForUser"):
        groups = {
            g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]
        }
    if group not in groups:
        with aws_action("iam:AddUserToGroup"):
            iam.add_user_to_group(GroupName=group, UserName=name)
    return user


def _pages(iam: Any, operation: str, key: str, **kwargs: Any) -> list:
    with aws_action(f"iam:{_camel(operation)}"):
        return [
            item
            for page in iam.get_paginator(operation).paginate(**kwargs)
            for item in page[key]
        ]


def _camel(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def _ignore_missing(action: str, call: Any, **kwargs: Any) -> None:
    try:
        with aws_action(action):
            call(**kwargs)
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise


def _target_user(
    iam: Any,
    *,
    name: str,
    path: str,
    unique_id: str,
    spare_ids: frozenset[str],
) -> dict | None:
    """The IAM user an offboarded record may still act on, or None. Never one
    of another record: with `unique_id` known, only that user, and never one
    whose id is in `spare_ids` (held by a person still active)."""
    user = _get_owned(iam, "user", name, path)
    if user is None:
        return None
    if unique_id and user.get("UserId") != unique_id:
        return None
    if user.get("UserId") in spare_ids:
        return None
    return user


def disable_user(
    iam: Any,
    *,
    name: str,
    path: str,
    unique_id: str = "",
    spare_ids: frozenset[str] = frozenset(),
    service_credentials: bool = True,
) -> bool:
    """Take away everything an IAM user signs in or acts with, in the order
    IAM needs before DeleteUser: access keys and the console password first,
    then MFA devices, certificates, SSH keys, service-specific credentials,
    policies and groups (the operators group's sts:AssumeRole with them).
    The user itself stays (trusts in accounts not rewritten yet name it).
    Returns False when there is nothing of ours to disable (see _target_user).
    `service_credentials` False skips them (for emulators without the API)."""
    user = _target_user(
        iam,
        name=name,
        path=path,
        unique_id=unique_id,
        spare_ids=spare_ids,
    )
    if user is None:
        return False
    for key in _pages(iam, "list_access_keys", "AccessKeyMetadata", UserName=name):
        with aws_action("iam:DeleteAccessKey"):
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    _ignore_missing("iam:DeleteLoginProfile", iam.delete_login_profile, UserName=name)
    for device in _pages(iam, "list_mfa_devices", "MFADevices", UserName=name):
        serial = device["SerialNumber"]
        with aws_action("iam:DeactivateMFADevice"):
            iam.deactivate_mfa_device(UserName=name, SerialNumber=serial)
        if ":mfa/" in serial:  # virtual; hardware and FIDO keys are only detached
            _ignore_missing(
                "iam:DeleteVirtualMFADevice",
                iam.delete_virtual_mfa_device,
                SerialNumber=serial,
            )
    for cert in _pages(iam, "list_signing_certificates", "Certificates", UserName=name):
        with aws_action("iam:DeleteSigningCertificate"):
            iam.delete_signing_certificate(
                UserName=name, CertificateId=cert["CertificateId"]
            )
    for key in _pages(iam, "list_ssh_public_keys", "SSHPublicKeys", UserName=name):
        with aws_action("iam:DeleteSSHPublicKey"):
            iam.delete_ssh_public_key(
                UserName=name, SSHPublicKeyId=key["SSHPublicKeyId"]
            )
    credentials = []
    if service_credentials:
        with aws_action("iam:ListServiceSpecificCredentials"):
            credentials = iam.list_service_specific_credentials(UserName=name)[
                "ServiceSpecificCredentials"
            ]
    for credential in credentials:
        with aws_action("iam:DeleteServiceSpecificCredential"):
            iam.delete_service_specific_credential(
                UserName=name,
                ServiceSpecificCredentialId=credential["ServiceSpecificCredentialId"],
            )
    for policy_name in _pages(iam, "list_user_policies", "PolicyNames", UserName=name):
        with aws_action("iam:DeleteUserPolicy"):
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
    attached = _pages(
        iam, "list_attached_user_policies", "AttachedPolicies", UserName=name
    )
    for policy in attached:
        with aws_action("iam:DetachUserPolicy"):
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
    for group in _pages(iam, "list_groups_for_user", "Groups", UserName=name):
        with aws_action("iam:RemoveUserFromGroup"):
            iam.remove_user_from_group(GroupName=group["GroupName"], UserName=name)
    return True


def delete_user(
    iam: Any,
    *,
    name: str,
    path: str,
    unique_id: str = "",
    spare_ids: frozenset[str] = frozenset(),
    service_credentials: bool = True,
) -> bool:
    """Delete an IAM user that disable_user emptied; when something came back
    since (DeleteConflict), empty it again first. Returns False when there is
    nothing of ours to delete: no such user, or another record's (a newer
    user of the same name, see _target_user)."""
    target = {"name": name, "path": path, "unique_id": unique_id}
    if _target_user(iam, **target, spare_ids=spare_ids) is None:
        return False
    try:
        with aws_action("iam:DeleteUser"):
            iam.delete_user(UserName=name)
    except PermanentError as exc:
        if exc.code != DELETE_CONFLICT:
            raise
        disable_user(
            iam, **target, spare_ids=spare_ids, service_credentials=service_credentials
        )
        with aws_action("iam:DeleteUser"):
            iam.delete_user(UserName=name)
    return True


# --- Roles --------------------------------------------------------------------


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


# --- Removals reconcile needs (the sync only adds) ----------------------------


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


def account_summary(iam: Any) -> dict[str, int]:
    with aws_action("iam:GetAccountSummary"):
        return iam.get_account_summary()["SummaryMap"]

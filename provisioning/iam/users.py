"""IAM users: made or fixed, disabled (offboarding's first step) and deleted,
never touching a user that is not the one recorded."""

from typing import Any

from provisioning.aws import PermanentError, aws_action
from provisioning.iam.common import (
    ALREADY_EXISTS,
    DELETE_CONFLICT,
    USER_TAG_KEYS,
    _exists,
    _get_owned,
    _ignore_missing,
    _tag_changes,
)


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

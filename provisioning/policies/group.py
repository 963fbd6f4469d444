"""The operators group's policies: assume roles, and manage one's own MFA,
access keys and tags (with MFA only)."""

from provisioning.policies.core import Document, _doc, _self_mfa_arn, _self_user_arn
from provisioning.policies.tags import RESERVED_TAG_KEYS

AWS_MANAGED_GROUP_POLICY = "IAMSelfManageServiceSpecificCredentials"

# What a user may do before registering MFA: manage their own password and
# MFA device. Everything else is denied until MFA is present.
MFA_SELF_SERVICE_ACTIONS = [
    "iam:ChangePassword",
    "iam:CreateVirtualMFADevice",
    "iam:DeleteVirtualMFADevice",
    "iam:DeactivateMFADevice",
    "iam:EnableMFADevice",
    "iam:GetLoginProfile",
    "iam:GetUser",
    "iam:ResyncMFADevice",
    "iam:ListMFADevices",
]

ACCESS_KEY_SELF_SERVICE_ACTIONS = [
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
]
# What the AWS-managed IAMSelfManageServiceSpecificCredentials allows.
SERVICE_CREDENTIAL_SELF_SERVICE_ACTIONS = [
    "iam:CreateServiceSpecificCredential",
    "iam:DeleteServiceSpecificCredential",
    "iam:ListServiceSpecificCredentials",
    "iam:ResetServiceSpecificCredential",
    "iam:UpdateServiceSpecificCredential",
]
TAG_SELF_SERVICE_ACTIONS = ["iam:TagUser", "iam:UntagUser"]


def assume_role_policy() -> Document:
    """Role trust policies decide who gets in; this only lets the call happen."""
    return _doc(
        {
            "Sid": "AssumeRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": "*",
        }
    )


def self_access_keys_policy(
    *, account_id: str, path: str, partition: str = "aws"
) -> Document:
    return _doc(
        {
            "Sid": "ManageOwnAccessKeys",
            "Effect": "Allow",
            "Action": list(ACCESS_KEY_SELF_SERVICE_ACTIONS),
            "Resource": _self_user_arn(account_id, path, partition),
        }
    )


def self_tags_policy(*, account_id: str, path: str, partition: str = "aws") -> Document:
    """Users may tag themselves, except with the keys opsgate owns.

    IAM tag keys are unique case-insensitively, so the fixed keys are matched
    with StringEqualsIgnoreCase; the prefix has no case-insensitive wildcard
    operator, so its usual spellings are listed.
    """
    me = _self_user_arn(account_id, path, partition)
    return _doc(
        {
            "Sid": "ManageOwnTags",
            "Effect": "Allow",
            "Action": ["iam:ListUserTags", *TAG_SELF_SERVICE_ACTIONS],
            "Resource": me,
        },
        *_reserved_tag_denies(me),
    )


def _reserved_tag_denies(resource: str) -> list[Document]:
    return [
        {
            "Sid": "DenyReservedTagKeys",
            "Effect": "Deny",
            "Action": list(TAG_SELF_SERVICE_ACTIONS),
            "Resource": resource,
            "Condition": {
                "ForAnyValue:StringEqualsIgnoreCase": {
                    "aws:TagKeys": list(RESERVED_TAG_KEYS)
                }
            },
        },
        {
            "Sid": "DenyReservedTagPrefix",
            "Effect": "Deny",
            "Action": list(TAG_SELF_SERVICE_ACTIONS),
            "Resource": resource,
            "Condition": {
                "ForAnyValue:StringLike": {
                    "aws:TagKeys": ["opsgate*", "Opsgate*", "OpsGate*", "OPSGATE*"]
                }
            },
        },
    ]


def enforce_mfa_policy(
    *, account_id: str, path: str, partition: str = "aws"
) -> Document:
    return _doc(
        {
            "Sid": "SelfManagedMfa",
            "Effect": "Allow",
            "Action": list(MFA_SELF_SERVICE_ACTIONS),
            "Resource": [
                _self_mfa_arn(account_id, partition),
                _self_user_arn(account_id, path, partition),
            ],
        },
        _restrict_actions_without_mfa(),
    )


def _restrict_actions_without_mfa() -> Document:
    # BoolIfExists, not Bool: requests signed with long-term access keys carry
    # no MFA key at all and would slip past a plain Bool.
    return {
        "Sid": "RestrictActionsWithoutMfa",
        "Effect": "Deny",
        "NotAction": list(MFA_SELF_SERVICE_ACTIONS),
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    }


# --- Named policy sets --------------------------------------------------------


def group_policies(
    *, prefix: str, account_id: str, path: str, partition: str = "aws"
) -> dict[str, Document]:
    """Customer-managed policies attached to the operators group, by name."""
    where = {"account_id": account_id, "path": path, "partition": partition}
    return {
        f"{prefix}AssumeRole": assume_role_policy(),
        f"{prefix}SelfAccessKeys": self_access_keys_policy(**where),
        f"{prefix}SelfTags": self_tags_policy(**where),
        f"{prefix}EnforceMfa": enforce_mfa_policy(**where),
    }

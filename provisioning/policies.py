"""The IAM documents and tag sets opsgate writes (DESIGN §1).

Pure functions: plain values in, dicts out. No ORM, no boto3, no settings.
Documents are built as dicts and serialised with json.dumps, so user input
never becomes JSON text; project names reach AWS only as tag values.
"""

import json
import math
from datetime import UTC, datetime
from typing import Any

VERSION = "2012-10-17"

MANAGED_BY_KEY = "ManagedBy"
MANAGED_BY_VALUE = "opsgate"
PROJECT_KEY = "Project"
RUN_AS_KEY = "SSMSessionRunAs"
EMAIL_KEY = "E-mail Address"  # the CDK stack's key, spaces included
RESERVED_TAG_KEYS = (PROJECT_KEY, RUN_AS_KEY, MANAGED_BY_KEY, EMAIL_KEY)
RESERVED_TAG_PREFIX = "opsgate"

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

Document = dict[str, Any]


def _doc(*statements: Document) -> Document:
    return {"Version": VERSION, "Statement": list(statements)}


# --- ARNs ---------------------------------------------------------------------


def user_arn(*, account_id: str, path: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:user{path}{name}"


def role_arn(*, account_id: str, path: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role{path}{name}"


def policy_arn(*, account_id: str, path: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:policy{path}{name}"


def aws_managed_policy_arn(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def _self_user_arn(account_id: str, path: str, partition: str) -> str:
    # Exact: the stack's trailing "*" let alice manage alice2.
    return f"arn:{partition}:iam::{account_id}:user{path}${{aws:username}}"


def _self_mfa_arn(account_id: str, partition: str) -> str:
    return f"arn:{partition}:iam::{account_id}:mfa/${{aws:username}}"


# --- The operators group ------------------------------------------------------


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


# --- Operation roles ----------------------------------------------------------

_SAME_PROJECT = {
    "StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}
}


def ssm_session_manager_policy(
    *, session_documents: list[str], partition: str = "aws"
) -> Document:
    return _doc(
        {
            "Sid": "StartSessionOnProjectInstances",
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": "*",
            "Condition": {
                **_SAME_PROJECT,
                "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"},
            },
        },
        {
            "Sid": "ConnectionStatusOfProjectInstances",
            "Effect": "Allow",
            "Action": "ssm:GetConnectionStatus",
            "Resource": "*",
            "Condition": _SAME_PROJECT,
        },
        {
            # Listed exactly; the stack allowed document/*.
            "Sid": "AllowedSessionDocuments",
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": [
                f"arn:{partition}:ssm:*:*:document/{name}"
                for name in sorted(session_documents)
            ],
        },
        {
            # aws:username does not exist in a role session; session ids start
            # with the caller's aws:userid.
            "Sid": "ResumeAndTerminateOwnSessions",
            "Effect": "Allow",
            "Action": ["ssm:ResumeSession", "ssm:TerminateSession"],
            "Resource": f"arn:{partition}:ssm:*:*:session/*",
            "Condition": {
                "StringLike": {
                    "ssm:resourceTag/aws:ssmmessages:session-id": "${aws:userid}"
                }
            },
        },
        {
            "Sid": "DescribeInstancesAndSessions",
            "Effect": "Allow",
            "Action": ["ssm:DescribeInstanceInformation", "ssm:DescribeSessions"],
            "Resource": "*",
        },
    )


def ec2_start_stop_policy() -> Document:
    return _doc(
        {
            "Sid": "DescribeInstances",
            "Effect": "Allow",
            "Action": "ec2:DescribeInstances",
            "Resource": "*",
        },
        {
            "Sid": "StartStopProjectInstances",
            "Effect": "Allow",
            "Action": ["ec2:StartInstances", "ec2:StopInstances"],
            "Resource": "*",
            "Condition": _SAME_PROJECT,
        },
    )


def trust_policy(principal_arns: list[str]) -> Document:
    """One Allow for every principal (never one statement each) plus a deny of
    session tags, which would override Project and SSMSessionRunAs."""
    if not principal_arns:
        raise ValueError("a trust policy needs at least one principal")
    return _doc(
        {
            "Sid": "ApprovedOperatorsWithMfa",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(set(principal_arns))},
            "Action": "sts:AssumeRole",
            "Condition": {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "StringEquals": {"sts:RoleSessionName": "${aws:username}"},
            },
        },
        {
            "Sid": "NoSessionTags",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sts:TagSession",
        },
    )


def iso8601(when: datetime) -> str:
    """UTC, whole seconds rounded up: a cutoff never lets through a session
    issued in the same second before it."""
    when = when.astimezone(UTC)
    seconds = math.ceil(when.timestamp())
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def revoked_sessions_policy(
    *, role_id: str, revoked: dict[str, datetime]
) -> Document | None:
    """The role's inline deny for sessions that outlive a revocation.

    A revoked user's sessions keep working until they expire; this denies
    everything to sessions of `user` (aws:userid is "<role id>:<session name>",
    and the trust forces the session name to be the user name) issued before
    their revocation. None when nobody needs it: the inline policy goes."""
    if not revoked:
        return None
    return _doc(
        *(
            {
                "Sid": f"RevokedSessions{index}",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:userid": f"{role_id}:{user}"},
                    "DateLessThan": {"aws:TokenIssueTime": iso8601(when)},
                },
            }
            for index, (user, when) in enumerate(sorted(revoked.items()), start=1)
        )
    )


def assumed_role_session_arn(
    *, account_id: str, role_name: str, session_name: str, partition: str = "aws"
) -> str:
    """The ARN SSM records as the Owner of a session started from a role
    session (no path in assumed-role ARNs)."""
    return f"arn:{partition}:sts::{account_id}:assumed-role/{role_name}/{session_name}"


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


def role_policies(
    *, prefix: str, session_documents: list[str], partition: str = "aws"
) -> dict[str, Document]:
    """Customer-managed policies attached to every operation role, by name."""
    return {
        f"{prefix}SsmSessionManager": ssm_session_manager_policy(
            session_documents=session_documents, partition=partition
        ),
        f"{prefix}Ec2StartStop": ec2_start_stop_policy(),
    }


# --- Tags ---------------------------------------------------------------------


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def user_tags(*, email: str = "") -> list[dict[str, str]]:
    pairs = {MANAGED_BY_KEY: MANAGED_BY_VALUE}
    if email:
        pairs[EMAIL_KEY] = email
    return _tags(pairs)


def role_tags(*, project: str, os_user: str) -> list[dict[str, str]]:
    return _tags(
        {PROJECT_KEY: project, RUN_AS_KEY: os_user, MANAGED_BY_KEY: MANAGED_BY_VALUE}
    )


def managed_tags() -> list[dict[str, str]]:
    return _tags({MANAGED_BY_KEY: MANAGED_BY_VALUE})


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def is_managed(tags: list[dict[str, str]] | None) -> bool:
    return tag_dict(tags).get(MANAGED_BY_KEY) == MANAGED_BY_VALUE


# --- Comparing and sizing -----------------------------------------------------


def canonical(value: Any) -> Any:
    """A form in which two documents IAM treats alike compare equal: keys sorted,
    one-element lists as scalars, and lists of scalars sorted (order carries no
    meaning in Action, Resource, Principal or condition values)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if len(items) == 1:
            return items[0]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def same_document(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        a = json.loads(a)
    if isinstance(b, str):
        b = json.loads(b)
    return canonical(a) == canonical(b)


def minified(document: Document) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def trust_policy_size(principal_arns: list[str]) -> int:
    """Characters the trust policy counts against AssumeRolePolicySizeQuota.

    IAM counts the document without white space."""
    return len(minified(trust_policy(principal_arns)))


# --- opsgate's own credentials (least privilege) --------------------------------

ROLE_BOUNDARY_ACTIONS = [
    "ec2:DescribeInstances",
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeSessions",
    "ssm:GetConnectionStatus",
    "ssm:ResumeSession",
    "ssm:StartSession",
    "ssm:TerminateSession",
]


def role_boundary_policy() -> Document:
    """The permissions boundary of every operation role: the most any of them
    can ever do, whatever policies get attached to it later."""
    return _doc(
        {
            "Sid": "OperationRoleCeiling",
            "Effect": "Allow",
            "Action": list(ROLE_BOUNDARY_ACTIONS),
            "Resource": "*",
        }
    )


def user_boundary_policy(
    *, account_id: str, path: str, partition: str = "aws"
) -> Document:
    """The permissions boundary of every IAM user opsgate creates: the most an
    operator can ever do, whatever the operators group's policies say (one
    rewritten to Allow * on * included). Their own password, MFA device,
    access keys, service-specific credentials and tags, and sts:AssumeRole on
    roles under opsgate's path, in any account (roles accounts trust the
    identity account's users), each of which carries the role boundary. MFA
    before anything else, and no reserved tag keys, hold here too."""
    me = _self_user_arn(account_id, path, partition)
    return _doc(
        {
            "Sid": "OwnPasswordAndMfa",
            "Effect": "Allow",
            "Action": list(MFA_SELF_SERVICE_ACTIONS),
            "Resource": [_self_mfa_arn(account_id, partition), me],
        },
        {
            "Sid": "OwnCredentialsAndTags",
            "Effect": "Allow",
            "Action": sorted(
                [
                    *ACCESS_KEY_SELF_SERVICE_ACTIONS,
                    *SERVICE_CREDENTIAL_SELF_SERVICE_ACTIONS,
                    "iam:ListUserTags",
                    *TAG_SELF_SERVICE_ACTIONS,
                ]
            ),
            "Resource": me,
        },
        {
            "Sid": "AssumeOpsgateRolesOnly",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:{partition}:iam::*:role{path}*",
        },
        *_reserved_tag_denies(me),
        _restrict_actions_without_mfa(),
    )


_MANAGED = {"StringEquals": {"aws:ResourceTag/ManagedBy": MANAGED_BY_VALUE}}
BOUNDARY_POLICY_WRITES = [
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:TagPolicy",
    "iam:UntagPolicy",
]


def opsgate_service_policy(
    *,
    account_id: str,
    path: str,
    prefix: str,
    group_name: str,
    boundary_name: str,
    user_boundary_name: str,
    partition: str = "aws",
) -> Document:
    """What opsgate's own credentials need, and no more: only its path, only
    resources tagged ManagedBy=opsgate, tags required at creation, the role
    boundary on every role and the user boundary on every user it creates or
    changes, never a write to either boundary, and no iam:PassRole.

    So whoever holds these credentials gets at most what the two boundaries
    allow, even after rewriting every policy opsgate may write."""
    iam = f"arn:{partition}:iam::{account_id}"
    users, roles = f"{iam}:user{path}*", f"{iam}:role{path}*"
    group = f"{iam}:group{path}{group_name}"
    own_policies = f"{iam}:policy{path}{prefix}*"
    boundary = f"{iam}:policy{path}{boundary_name}"
    user_boundary = f"{iam}:policy{path}{user_boundary_name}"
    with_boundary = {"ArnEquals": {"iam:PermissionsBoundary": boundary}}
    with_user_boundary = {"ArnEquals": {"iam:PermissionsBoundary": user_boundary}}
    return _doc(
        {
            "Sid": "ReadAccount",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeInstances",
                "iam:GetAccountAuthorizationDetails",
                "iam:GetAccountSummary",
                "ssm:DescribeSessions",
                "sts:GetCallerIdentity",
            ],
            "Resource": "*",
        },
        {
            "Sid": "CreateOwnPoliciesTagged",
            "Effect": "Allow",
            "Action": ["iam:CreatePolicy", "iam:TagPolicy"],
            "Resource": own_policies,
            "Condition": {
                "StringEquals": {"aws:RequestTag/ManagedBy": MANAGED_BY_VALUE}
            },
        },
        {
            "Sid": "UpdateOwnPolicies",
            "Effect": "Allow",
            "Action": [
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
            ],
            "Resource": own_policies,
        },
        {
            # opsgate checks that the deployment created them (GetPolicy).
            "Sid": "ReadTheBoundaries",
            "Effect": "Allow",
            "Action": "iam:GetPolicy",
            "Resource": [boundary, user_boundary],
        },
        {
            # The deployment creates them; only a person may change them.
            "Sid": "BoundariesAreNotOpsgatesToWrite",
            "Effect": "Deny",
            "Action": list(BOUNDARY_POLICY_WRITES),
            "Resource": [boundary, user_boundary],
        },
        {
            "Sid": "OperatorsGroup",
            "Effect": "Allow",
            "Action": [
                "iam:AddUserToGroup",
                "iam:CreateGroup",
                "iam:GetGroup",
                "iam:ListAttachedGroupPolicies",
                "iam:RemoveUserFromGroup",
            ],
            "Resource": group,
        },
        {
            "Sid": "OperatorsGroupPolicies",
            "Effect": "Allow",
            "Action": ["iam:AttachGroupPolicy", "iam:DetachGroupPolicy"],
            "Resource": group,
            "Condition": {
                "ArnLike": {
                    "iam:PolicyARN": [
                        own_policies,
                        aws_managed_policy_arn(AWS_MANAGED_GROUP_POLICY, partition),
                    ]
                }
            },
        },
        {
            "Sid": "CreateUsersTaggedWithBoundary",
            "Effect": "Allow",
            "Action": "iam:CreateUser",
            "Resource": users,
            "Condition": {
                "StringEquals": {"aws:RequestTag/ManagedBy": MANAGED_BY_VALUE},
                **with_user_boundary,
            },
        },
        {
            # Users created before the boundary existed get it on their sync.
            "Sid": "BoundaryOnOwnUsers",
            "Effect": "Allow",
            "Action": "iam:PutUserPermissionsBoundary",
            "Resource": users,
            "Condition": {**_MANAGED, **with_user_boundary},
        },
        {
            # Tagging is needed by CreateUser itself (tags in the same call).
            "Sid": "ReadAndTagOwnUsers",
            "Effect": "Allow",
            "Action": [
                "iam:GetUser",
                "iam:ListAccessKeys",
                "iam:ListAttachedUserPolicies",
                "iam:ListGroupsForUser",
                "iam:ListMFADevices",
                "iam:ListSSHPublicKeys",
                "iam:ListServiceSpecificCredentials",
                "iam:ListSigningCertificates",
                "iam:ListUserPolicies",
                "iam:ListUserTags",
                "iam:TagUser",
                "iam:UntagUser",
            ],
            "Resource": users,
        },
        {
            "Sid": "ChangeOwnUsers",
            "Effect": "Allow",
            "Action": [
                "iam:CreateLoginProfile",
                "iam:DeactivateMFADevice",
                "iam:DeleteAccessKey",
                "iam:DeleteLoginProfile",
                "iam:DeleteSSHPublicKey",
                "iam:DeleteServiceSpecificCredential",
                "iam:DeleteSigningCertificate",
                "iam:DeleteUser",
                "iam:DeleteUserPolicy",
                "iam:DetachUserPolicy",
            ],
            "Resource": users,
            "Condition": _MANAGED,
        },
        {
            # Virtual MFA devices are named after their user (not under a path).
            "Sid": "DeleteDeactivatedMfaDevices",
            "Effect": "Allow",
            "Action": "iam:DeleteVirtualMFADevice",
            "Resource": f"{iam}:mfa/*",
        },
        {
            "Sid": "CreateRolesTaggedWithBoundary",
            "Effect": "Allow",
            "Action": "iam:CreateRole",
            "Resource": roles,
            "Condition": {
                "StringEquals": {"aws:RequestTag/ManagedBy": MANAGED_BY_VALUE},
                **with_boundary,
            },
        },
        {
            "Sid": "ReadAndTagOwnRoles",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
            ],
            "Resource": roles,
        },
        {
            "Sid": "ChangeOwnRoles",
            "Effect": "Allow",
            "Action": [
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
            ],
            "Resource": roles,
            "Condition": _MANAGED,
        },
        {
            "Sid": "AttachOnlyOwnPoliciesWithinTheBoundary",
            "Effect": "Allow",
            "Action": "iam:AttachRolePolicy",
            "Resource": roles,
            "Condition": {
                **with_boundary,
                "ArnLike": {"iam:PolicyARN": own_policies},
            },
        },
        {
            # Inline denies for revoked sessions; the boundary still caps them.
            "Sid": "InlinePoliciesAndBoundaryWithinTheBoundary",
            "Effect": "Allow",
            "Action": ["iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
            "Resource": roles,
            "Condition": with_boundary,
        },
        {
            "Sid": "KeepTheBoundaries",
            "Effect": "Deny",
            "Action": [
                "iam:DeleteRolePermissionsBoundary",
                "iam:DeleteUserPermissionsBoundary",
            ],
            "Resource": "*",
        },
        {
            # Also when someone adds an Allow to this policy later: a user or
            # a role with another boundary, or none (the key is then absent,
            # and a negated operator matches), is refused.
            "Sid": "UsersOnlyWithTheUserBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateUser", "iam:PutUserPermissionsBoundary"],
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"iam:PermissionsBoundary": user_boundary}},
        },
        {
            "Sid": "RolesOnlyWithTheRoleBoundary",
            "Effect": "Deny",
            "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            "Sid": "EndSessionsOnRevoke",
            "Effect": "Allow",
            "Action": "ssm:TerminateSession",
            "Resource": f"arn:{partition}:ssm:*:{account_id}:session/*",
        },
        {
            "Sid": "NeverPassRoles",
            "Effect": "Deny",
            "Action": "iam:PassRole",
            "Resource": "*",
        },
    )

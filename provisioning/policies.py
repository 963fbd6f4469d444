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


# IAM's limit on the inline policies of one role, all together (characters
# without white space). The revoked-sessions deny is the only inline policy
# opsgate writes on a role.
ROLE_INLINE_POLICY_QUOTA = 10_240


def revoked_sessions_policy(
    *,
    role_id: str,
    revoked: dict[str, datetime],
    budget: int = ROLE_INLINE_POLICY_QUOTA,
) -> Document | None:
    """The role's inline deny for sessions that outlive the end of access.

    An ended person's sessions keep working until they expire; this denies
    everything to sessions of each `user` (aws:userid is "<role id>:<session
    name>", and the trust forces the session name to be the user name) issued
    before their cutoff. None when nobody needs it: the inline policy goes.

    Past `budget` characters (the role's inline-policy quota) one statement
    denies every session of the role issued before the latest cutoff: it
    covers every ended person, and the people who still hold the role simply
    assume it again."""
    if not revoked:
        return None
    document = _doc(
        *(
            _sessions_deny(f"RevokedSessions{index}", f"{role_id}:{user}", when)
            for index, (user, when) in enumerate(sorted(revoked.items()), start=1)
        )
    )
    if len(minified(document)) <= budget:
        return document
    return _doc(
        _sessions_deny("AllSessionsBefore", f"{role_id}:*", max(revoked.values()))
    )


def _sessions_deny(sid: str, userid: str, before: datetime) -> Document:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringLike": {"aws:userid": userid},
            "DateLessThan": {"aws:TokenIssueTime": iso8601(before)},
        },
    }


def trust_nobody_policy() -> Document:
    """The trust of a role whose last principal is gone, written before the
    role is deleted: should the deletion fail, nobody can assume it."""
    return _doc(
        {
            "Sid": "NobodyAssumes",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
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

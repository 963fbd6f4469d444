"""The permissions boundaries of what opsgate creates: the most an operation
role or an operator's IAM user can ever do."""

from provisioning.policies.core import Document, _doc, _self_mfa_arn, _self_user_arn
from provisioning.policies.group import (
    ACCESS_KEY_SELF_SERVICE_ACTIONS,
    MFA_SELF_SERVICE_ACTIONS,
    SERVICE_CREDENTIAL_SELF_SERVICE_ACTIONS,
    TAG_SELF_SERVICE_ACTIONS,
    _reserved_tag_denies,
    _restrict_actions_without_mfa,
)

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

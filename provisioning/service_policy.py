"""opsgate's own least-privilege policy: what the credentials of the portal
and the worker need, and no more (DESIGN §7). Pure, like provisioning.policies:
`manage.py opsgate_iam_policy` prints it, the deployment attaches it, and
tests/test_least_privilege.py runs every flow with only it."""

from provisioning.policies import (
    AWS_MANAGED_GROUP_POLICY,
    MANAGED_BY_VALUE,
    Document,
    _doc,
    aws_managed_policy_arn,
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
            # Readiness (issue 25): which instances SSM manages, the OS-user
            # commands' answers (sending them is the SendCommand statement's,
            # limited to opsgate's documents and tagged instances), and, with
            # OPSGATE_READINESS_SIMULATE, IAM's simulator on opsgate's own
            # users and roles. All reads.
            "Sid": "ReadinessReads",
            "Effect": "Allow",
            "Action": [
                "ssm:DescribeInstanceInformation",
                "ssm:GetCommandInvocation",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadinessSimulation",
            "Effect": "Allow",
            "Action": "iam:SimulatePrincipalPolicy",
            "Resource": [users, roles],
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

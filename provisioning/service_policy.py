"""opsgate's own least-privilege policy: what the credentials of the portal
and the worker need, and no more (DESIGN §7). Pure, like provisioning.policies:
`manage.py opsgate_iam_policy` prints it, the deployment attaches it, and
tests/test_least_privilege.py runs every flow with only it."""

from provisioning import os_user_documents
from provisioning.policies import (
    AWS_MANAGED_GROUP_POLICY,
    MANAGED_BY_VALUE,
    Document,
    aws_managed_policy_arn,
)
from provisioning.policies.core import _doc

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
# The deployment's, like the boundaries: opsgate runs SSM documents, never
# writes one (it could otherwise rewrite what it may run).
DOCUMENT_WRITES = [
    "ssm:CreateDocument",
    "ssm:DeleteDocument",
    "ssm:ModifyDocumentPermission",
    "ssm:UpdateDocument",
    "ssm:UpdateDocumentDefaultVersion",
    "ssm:UpdateDocumentMetadata",
]
# ABAC on the instances (issue 25): a project's instances carry its Project
# tag. ssm:resourceTag is the key SSM documents for SendCommand on instances
# (a global aws:ResourceTag key would also need aws:ViaAWSService).
_PROJECT_INSTANCE = {"StringLike": {"ssm:resourceTag/Project": "?*"}}
_NOT_PROJECT_INSTANCE = {"StringNotLike": {"ssm:resourceTag/Project": "?*"}}


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
    allow, even after rewriting every policy opsgate may write.

    On instances: ssm:SendCommand with the two OS-user documents of
    provisioning.os_user_documents only, only on instances with a Project
    tag, never a document write (issue 25)."""
    iam = f"arn:{partition}:iam::{account_id}"
    users, roles = f"{iam}:user{path}*", f"{iam}:role{path}*"
    group = f"{iam}:group{path}{group_name}"
    own_policies = f"{iam}:policy{path}{prefix}*"
    boundary = f"{iam}:policy{path}{boundary_name}"
    user_boundary = f"{iam}:policy{path}{user_boundary_name}"
    with_boundary = {"ArnEquals": {"iam:PermissionsBoundary": boundary}}
    with_user_boundary = {"ArnEquals": {"iam:PermissionsBoundary": user_boundary}}
    os_user_documents_arns = [
        os_user_documents.document_arn(
            account_id=account_id, name=name, partition=partition
        )
        for name in os_user_documents.NAMES
    ]
    instances = [
        f"arn:{partition}:ec2:*:{account_id}:instance/*",
        f"arn:{partition}:ssm:*:{account_id}:managed-instance/*",
    ]
    return _doc(
        {
            "Sid": "ReadAccount",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeInstances",
                "iam:GetAccountAuthorizationDetails",
                "iam:GetAccountSummary",
                "ssm:DescribeInstanceInformation",
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
            # Readiness (issue 25), with OPSGATE_READINESS_SIMULATE: IAM's
            # simulator on opsgate's own users and roles. Its other reads are
            # ReadAccount's (which instances SSM manages) and
            # ReadCommandResults' (the OS-user commands' answers).
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
            # The OS run-as users of grants (issue 25): these two documents...
            "Sid": "RunOnlyTheOsUserDocuments",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": os_user_documents_arns,
        },
        {
            # ...only on instances that carry a Project tag.
            "Sid": "RunCommandsOnProjectInstances",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": instances,
            "Condition": _PROJECT_INSTANCE,
        },
        {
            "Sid": "ReadCommandResults",
            "Effect": "Allow",
            "Action": ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations"],
            "Resource": "*",
        },
        {
            # Also when someone adds an Allow to this policy later: no other
            # document (AWS-RunShellScript...), no S3 bucket for the output...
            "Sid": "NoOtherDocuments",
            "Effect": "Deny",
            "Action": "ssm:SendCommand",
            "NotResource": [*os_user_documents_arns, *instances],
        },
        {
            # ...and no instance without a Project tag (the key is then
            # absent, and a negated operator matches).
            "Sid": "NoInstancesOutsideProjects",
            "Effect": "Deny",
            "Action": "ssm:SendCommand",
            "Resource": instances,
            "Condition": _NOT_PROJECT_INSTANCE,
        },
        {
            "Sid": "DocumentsAreNotOpsgatesToWrite",
            "Effect": "Deny",
            "Action": list(DOCUMENT_WRITES),
            "Resource": f"arn:{partition}:ssm:*:{account_id}:document/*",
        },
        {
            "Sid": "NeverPassRoles",
            "Effect": "Deny",
            "Action": "iam:PassRole",
            "Resource": "*",
        },
    )

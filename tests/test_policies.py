"""The IAM documents, compared whole. Each also pins a fix to the CDK stack."""

from provisioning import policies

ACCT = "123456789012"
P = "/opsgate/"


def test_enforce_mfa_policy_is_exactly_the_contract():
    self_actions = [
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
    assert policies.enforce_mfa_policy(account_id=ACCT, path=P) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SelfManagedMfa",
                "Effect": "Allow",
                "Action": self_actions,
                # Exact resources: the stack's trailing * let alice manage alice2's MFA.
                "Resource": [
                    "arn:aws:iam::123456789012:mfa/${aws:username}",
                    "arn:aws:iam::123456789012:user/opsgate/${aws:username}",
                ],
            },
            {
                "Sid": "RestrictActionsWithoutMfa",
                "Effect": "Deny",
                "NotAction": self_actions,
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ],
    }


def test_self_access_keys_policy_covers_only_the_caller():
    assert policies.self_access_keys_policy(account_id=ACCT, path=P) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ManageOwnAccessKeys",
                "Effect": "Allow",
                "Action": [
                    "iam:CreateAccessKey",
                    "iam:DeleteAccessKey",
                    "iam:GetAccessKeyLastUsed",
                    "iam:ListAccessKeys",
                    "iam:UpdateAccessKey",
                ],
                "Resource": "arn:aws:iam::123456789012:user/opsgate/${aws:username}",
            }
        ],
    }


def test_self_tags_policy_denies_the_keys_opsgate_owns():
    me = "arn:aws:iam::123456789012:user/opsgate/${aws:username}"
    assert policies.self_tags_policy(account_id=ACCT, path=P) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ManageOwnTags",
                "Effect": "Allow",
                "Action": ["iam:ListUserTags", "iam:TagUser", "iam:UntagUser"],
                "Resource": me,
            },
            {
                "Sid": "DenyReservedTagKeys",
                "Effect": "Deny",
                "Action": ["iam:TagUser", "iam:UntagUser"],
                "Resource": me,
                "Condition": {
                    "ForAnyValue:StringEqualsIgnoreCase": {
                        "aws:TagKeys": [
                            "Project",
                            "SSMSessionRunAs",
                            "ManagedBy",
                            "E-mail Address",
                        ]
                    }
                },
            },
            {
                "Sid": "DenyReservedTagPrefix",
                "Effect": "Deny",
                "Action": ["iam:TagUser", "iam:UntagUser"],
                "Resource": me,
                "Condition": {
                    "ForAnyValue:StringLike": {
                        "aws:TagKeys": ["opsgate*", "Opsgate*", "OpsGate*", "OPSGATE*"]
                    }
                },
            },
        ],
    }


def test_assume_role_policy_lets_trust_policies_decide():
    assert policies.assume_role_policy() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumeRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "*",
            }
        ],
    }


def test_ssm_policy_limits_sessions_to_the_project_documents_and_own_sessions():
    same_project = {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}
    assert policies.ssm_session_manager_policy(
        session_documents=[
            "SSM-SessionManagerRunShell",
            "AWS-StartPortForwardingSession",
        ]
    ) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartSessionOnProjectInstances",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": "*",
                "Condition": {
                    "StringEquals": same_project,
                    "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"},
                },
            },
            {
                "Sid": "ConnectionStatusOfProjectInstances",
                "Effect": "Allow",
                "Action": "ssm:GetConnectionStatus",
                "Resource": "*",
                "Condition": {"StringEquals": same_project},
            },
            {
                # Listed exactly: the stack allowed document/*.
                "Sid": "AllowedSessionDocuments",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": [
                    "arn:aws:ssm:*:*:document/AWS-StartPortForwardingSession",
                    "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
                ],
            },
            {
                # The stack used session/${aws:username}-*, which matches nothing
                # in a role session.
                "Sid": "ResumeAndTerminateOwnSessions",
                "Effect": "Allow",
                "Action": ["ssm:ResumeSession", "ssm:TerminateSession"],
                "Resource": "arn:aws:ssm:*:*:session/*",
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
        ],
    }


def test_ec2_policy_starts_and_stops_only_same_project_instances():
    assert policies.ec2_start_stop_policy() == {
        "Version": "2012-10-17",
        "Statement": [
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
                "Condition": {
                    "StringEquals": {
                        "aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"
                    }
                },
            },
        ],
    }


def test_trust_policy_has_one_statement_for_all_principals_sorted_with_mfa():
    bob = "arn:aws:iam::123456789012:user/opsgate/bob"
    alice = "arn:aws:iam::123456789012:user/opsgate/alice"
    assert policies.trust_policy([bob, alice, bob]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ApprovedOperatorsWithMfa",
                "Effect": "Allow",
                "Principal": {"AWS": [alice, bob]},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "StringEquals": {"sts:RoleSessionName": "${aws:username}"},
                },
            },
            {
                # Session tags would override Project and SSMSessionRunAs.
                "Sid": "NoSessionTags",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "sts:TagSession",
            },
        ],
    }


def test_trust_policy_refuses_an_empty_principal_list():
    import pytest

    with pytest.raises(ValueError):
        policies.trust_policy([])


def test_group_and_role_policy_sets_are_named_with_the_prefix():
    group = policies.group_policies(prefix="opsgate-", account_id=ACCT, path=P)
    roles = policies.role_policies(prefix="opsgate-", session_documents=["X"])
    assert sorted(group) == [
        "opsgate-AssumeRole",
        "opsgate-EnforceMfa",
        "opsgate-SelfAccessKeys",
        "opsgate-SelfTags",
    ]
    assert sorted(roles) == ["opsgate-Ec2StartStop", "opsgate-SsmSessionManager"]


def test_tags_carry_the_stack_keys_and_managed_by():
    assert policies.user_tags(email="a@example.com") == [
        {"Key": "ManagedBy", "Value": "opsgate"},
        {"Key": "E-mail Address", "Value": "a@example.com"},
    ]
    assert policies.user_tags() == [{"Key": "ManagedBy", "Value": "opsgate"}]
    assert policies.role_tags(project="Test Project 1", os_user="os-user1") == [
        {"Key": "Project", "Value": "Test Project 1"},
        {"Key": "SSMSessionRunAs", "Value": "os-user1"},
        {"Key": "ManagedBy", "Value": "opsgate"},
    ]


def test_non_ascii_project_names_stay_out_of_policy_text():
    tags = policies.role_tags(project="決済 チーム", os_user="deploy")
    assert tags[0] == {"Key": "Project", "Value": "決済 チーム"}
    assert policies.minified(policies.trust_policy(["arn:aws:iam::1:user/x"])).isascii()


def test_same_document_ignores_order_and_single_element_lists():
    a = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["b", "a"], "Resource": ["*"]}],
    }
    b = {
        "Statement": [{"Resource": "*", "Action": ["a", "b"], "Effect": "Allow"}],
        "Version": "2012-10-17",
    }
    assert policies.same_document(a, b)
    c = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": ["a", "b"], "Resource": "*"}],
    }
    assert not policies.same_document(a, c)


def test_trust_policy_size_counts_the_minified_document():
    arns = [f"arn:aws:iam::123456789012:user/opsgate/user{i:02d}" for i in range(10)]
    size = policies.trust_policy_size(arns)
    assert size == len(policies.minified(policies.trust_policy(arns)))
    assert " " not in policies.minified(policies.trust_policy(arns))
    assert (
        policies.trust_policy_size(arns + ["arn:aws:iam::123456789012:user/opsgate/x"])
        > size
    )


def test_revoked_sessions_policy_denies_each_users_sessions_issued_before_revoke():
    from datetime import UTC, datetime

    document = policies.revoked_sessions_policy(
        role_id="AROAEXAMPLEROLEID",
        revoked={
            "dave": datetime(2026, 11, 29, 15, 0, 0, tzinfo=UTC),
            # Rounded up: a session issued at 14:30:05.2 is still denied.
            "carol": datetime(2026, 11, 29, 14, 30, 5, 200000, tzinfo=UTC),
        },
    )
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RevokedSessions1",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:userid": "AROAEXAMPLEROLEID:carol"},
                    "DateLessThan": {"aws:TokenIssueTime": "2026-11-29T14:30:06Z"},
                },
            },
            {
                "Sid": "RevokedSessions2",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:userid": "AROAEXAMPLEROLEID:dave"},
                    "DateLessThan": {"aws:TokenIssueTime": "2026-11-29T15:00:00Z"},
                },
            },
        ],
    }


def test_revoked_sessions_policy_past_its_budget_denies_every_session_before_the_latest_cutoff():  # noqa: E501
    from datetime import UTC, datetime, timedelta

    first = datetime(2026, 11, 29, 14, 0, 0, tzinfo=UTC)
    # 60 people ended within one session duration, 64-character names.
    revoked = {
        f"{index:02d}".ljust(64, "x"): first + timedelta(seconds=50 * index)
        for index in range(60)
    }
    document = policies.revoked_sessions_policy(
        role_id="AROAEXAMPLEROLEID", revoked=revoked
    )
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllSessionsBefore",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:userid": "AROAEXAMPLEROLEID:*"},
                    "DateLessThan": {"aws:TokenIssueTime": "2026-11-29T14:49:10Z"},
                },
            }
        ],
    }
    # Each person's own statement as long as they fit.
    few = dict(list(revoked.items())[:3])
    assert (
        len(policies.revoked_sessions_policy(role_id="R", revoked=few)["Statement"])
        == 3
    )


def test_revoked_sessions_policy_is_never_over_the_role_inline_quota():
    from datetime import UTC, datetime

    when = datetime(2026, 11, 29, 14, 0, 0, tzinfo=UTC)
    for count in range(1, 80):
        revoked = {f"person-{i}".ljust(64, "y"): when for i in range(count)}
        document = policies.revoked_sessions_policy(
            role_id="AROAEXAMPLEROLEID0123", revoked=revoked
        )
        size = len(policies.minified(document))
        assert size <= policies.ROLE_INLINE_POLICY_QUOTA == 10_240


def test_the_trust_of_nobody_denies_everyone():
    assert policies.trust_nobody_policy() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NobodyAssumes",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }


def test_no_revoked_sessions_means_no_policy():
    assert policies.revoked_sessions_policy(role_id="AROAX", revoked={}) is None


def test_assumed_role_session_arn_has_no_path():
    assert (
        policies.assumed_role_session_arn(
            account_id="123456789012", role_name="payments-deploy", session_name="carol"
        )
        == "arn:aws:sts::123456789012:assumed-role/payments-deploy/carol"
    )


def test_user_boundary_is_the_ceiling_of_every_operator():
    mfa_self_service = [
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
    me = "arn:aws:iam::123456789012:user/opsgate/${aws:username}"
    assert policies.user_boundary_policy(account_id=ACCT, path=P) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                # What the group's EnforceMfa allows, on the same exact ARNs.
                "Sid": "OwnPasswordAndMfa",
                "Effect": "Allow",
                "Action": mfa_self_service,
                "Resource": ["arn:aws:iam::123456789012:mfa/${aws:username}", me],
            },
            {
                # SelfAccessKeys, IAMSelfManageServiceSpecificCredentials and
                # SelfTags of the group, on the caller only.
                "Sid": "OwnCredentialsAndTags",
                "Effect": "Allow",
                "Action": [
                    "iam:CreateAccessKey",
                    "iam:CreateServiceSpecificCredential",
                    "iam:DeleteAccessKey",
                    "iam:DeleteServiceSpecificCredential",
                    "iam:GetAccessKeyLastUsed",
                    "iam:ListAccessKeys",
                    "iam:ListServiceSpecificCredentials",
                    "iam:ListUserTags",
                    "iam:ResetServiceSpecificCredential",
                    "iam:TagUser",
                    "iam:UntagUser",
                    "iam:UpdateAccessKey",
                    "iam:UpdateServiceSpecificCredential",
                ],
                "Resource": me,
            },
            {
                # Only opsgate's roles (each carries the role boundary), in any
                # account: roles accounts trust the identity account's users.
                "Sid": "AssumeOpsgateRolesOnly",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "arn:aws:iam::*:role/opsgate/*",
            },
            {
                "Sid": "DenyReservedTagKeys",
                "Effect": "Deny",
                "Action": ["iam:TagUser", "iam:UntagUser"],
                "Resource": me,
                "Condition": {
                    "ForAnyValue:StringEqualsIgnoreCase": {
                        "aws:TagKeys": [
                            "Project",
                            "SSMSessionRunAs",
                            "ManagedBy",
                            "E-mail Address",
                        ]
                    }
                },
            },
            {
                "Sid": "DenyReservedTagPrefix",
                "Effect": "Deny",
                "Action": ["iam:TagUser", "iam:UntagUser"],
                "Resource": me,
                "Condition": {
                    "ForAnyValue:StringLike": {
                        "aws:TagKeys": ["opsgate*", "Opsgate*", "OpsGate*", "OPSGATE*"]
                    }
                },
            },
            {
                # The group's MFA rule again: a rewritten group cannot lift it.
                "Sid": "RestrictActionsWithoutMfa",
                "Effect": "Deny",
                "NotAction": mfa_self_service,
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ],
    }


def test_user_boundary_follows_the_partition_and_path():
    document = policies.user_boundary_policy(
        account_id=ACCT, path="/ops/team/", partition="aws-cn"
    )
    resources = [s["Resource"] for s in document["Statement"]]
    assert resources[1] == "arn:aws-cn:iam::123456789012:user/ops/team/${aws:username}"
    assert resources[2] == "arn:aws-cn:iam::*:role/ops/team/*"

"""An operation role's permissions: SSM sessions and EC2 start/stop on the
instances of its project (the Project tag, ABAC)."""

from provisioning.policies.core import Document, _doc

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

"""Who may assume an operation role, and the deny that ends the sessions of
those who no longer may."""

import math
from datetime import UTC, datetime

from provisioning.policies.core import Document, _doc, minified


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


def trust_policy_size(principal_arns: list[str]) -> int:
    """Characters the trust policy counts against AssumeRolePolicySizeQuota.

    IAM counts the document without white space."""
    return len(minified(trust_policy(principal_arns)))

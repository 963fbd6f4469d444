"""SSM Session Manager steps: end the open sessions of a person who lost access."""

from typing import Any

from provisioning.aws import PermanentError, aws_action

GONE = {"DoesNotExistException", "InvalidParameterValueException"}


def active_sessions(ssm: Any, *, owner: str) -> list[str]:
    """Ids of the active sessions whose Owner is `owner` (an assumed-role ARN)."""
    ids: list[str] = []
    kwargs: dict[str, Any] = {
        "State": "Active",
        "Filters": [{"key": "Owner", "value": owner}],
    }
    while True:
        with aws_action("ssm:DescribeSessions"):
            page = ssm.describe_sessions(**kwargs)
        ids += [s["SessionId"] for s in page.get("Sessions", [])]
        if not page.get("NextToken"):
            return ids
        kwargs["NextToken"] = page["NextToken"]


def terminate_sessions(ssm: Any, *, owner: str) -> list[str]:
    """Terminate every active session of `owner`; a session that ended in the
    meantime is fine. Returns the ids terminated."""
    ended = []
    for session_id in active_sessions(ssm, owner=owner):
        try:
            with aws_action("ssm:TerminateSession"):
                ssm.terminate_session(SessionId=session_id)
        except PermanentError as exc:
            if exc.code not in GONE:
                raise
        ended.append(session_id)
    return ended

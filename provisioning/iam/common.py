"""What every IAM step shares: the error codes it reads, documents as AWS
returns them, telling opsgate's objects from others', tag differences."""

import json
import urllib.parse
from typing import Any

from provisioning import policies
from provisioning.aws import PermanentError, aws_action

NO_SUCH_ENTITY = "NoSuchEntity"
ALREADY_EXISTS = "EntityAlreadyExists"
DELETE_CONFLICT = "DeleteConflict"
MAX_POLICY_VERSIONS = 5


def _document(value: Any) -> Any:
    """IAM returns documents URL-encoded; botocore usually decodes them already."""
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


def parse_document(value: Any) -> Any:
    return _document(value)


def _not_ours(kind: str, name: str) -> PermanentError:
    return PermanentError(
        f"An IAM {kind} named {name} already exists and is not managed by opsgate "
        f"(it lacks the tag {policies.MANAGED_BY_KEY}={policies.MANAGED_BY_VALUE} "
        "or lies outside opsgate's path). Pick another name, or remove or adopt "
        "that one by hand.",
        action=f"iam:Get{kind.capitalize()}",
        code="NotManaged",
    )


def _tag_changes(
    current: list[dict[str, str]] | None,
    desired: list[dict[str, str]],
    owned: tuple[str, ...],
) -> tuple[list[dict[str, str]], list[str]]:
    """Tags to set and keys to remove, among the keys opsgate owns. IAM tag keys
    are unique case-insensitively, so they are compared that way."""
    have = {k.lower(): (k, v) for k, v in policies.tag_dict(current).items()}
    want = policies.tag_dict(desired)
    to_set = [
        {"Key": k, "Value": v} for k, v in want.items() if have.get(k.lower()) != (k, v)
    ]
    wanted_lower = {k.lower() for k in want}
    to_remove = [
        have[k.lower()][0]
        for k in owned
        if k.lower() in have and k.lower() not in wanted_lower
    ]
    # A key present with other casing must go before the right casing is set.
    to_remove += [
        have[t["Key"].lower()][0]
        for t in to_set
        if t["Key"].lower() in have and have[t["Key"].lower()][0] != t["Key"]
    ]
    return to_set, to_remove


def _exists(action: str, call: Any, **params: Any) -> bool:
    """Whether a Get call finds its object: False on NoSuchEntity, any other
    error raised as usual."""
    try:
        with aws_action(action):
            call(**params)
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise
        return False
    return True


USER_TAG_KEYS = (policies.MANAGED_BY_KEY, policies.EMAIL_KEY)
ROLE_TAG_KEYS = (policies.MANAGED_BY_KEY, policies.PROJECT_KEY, policies.RUN_AS_KEY)


_GETTERS = {
    "user": ("iam:GetUser", "get_user", "UserName", "User"),
    "role": ("iam:GetRole", "get_role", "RoleName", "Role"),
}


def _get_owned(iam: Any, kind: str, name: str, path: str) -> dict | None:
    """The IAM user or role named `name`; None when there is none. One that
    exists but is not opsgate's (path, ManagedBy tag) is a permanent error."""
    action, method, param, key = _GETTERS[kind]
    try:
        with aws_action(action):
            found = getattr(iam, method)(**{param: name})[key]
    except PermanentError as exc:
        if exc.code == NO_SUCH_ENTITY:
            return None
        raise
    if found.get("Path") != path or not policies.is_managed(found.get("Tags")):
        raise _not_ours(kind, name)
    return found


def _ignore_missing(action: str, call: Any, **kwargs: Any) -> None:
    try:
        with aws_action(action):
            call(**kwargs)
    except PermanentError as exc:
        if exc.code != NO_SUCH_ENTITY:
            raise

"""What every document shares: the policy language version, the statement
list, ARNs, and comparing and sizing documents as IAM does."""

import json
from typing import Any

VERSION = "2012-10-17"

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

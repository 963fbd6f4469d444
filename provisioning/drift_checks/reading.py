"""Reading an account for reconcile: one paginated
GetAccountAuthorizationDetails, what of it is opsgate's, and what is too
recent to judge."""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from provisioning import iam, policies
from provisioning.aws import aws_action

log = logging.getLogger(__name__)

GAAD_FILTER = ["User", "Group", "Role", "LocalManagedPolicy"]


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


def read_account(client: Any) -> dict[str, dict[str, dict]]:
    """Users, groups and roles by lower-cased name (IAM names are unique
    regardless of case), customer-managed policies by ARN."""
    state: dict[str, dict[str, dict]] = {
        "users": {},
        "groups": {},
        "roles": {},
        "policies": {},
    }
    with aws_action("iam:GetAccountAuthorizationDetails"):
        paginator = client.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=GAAD_FILTER):
            for user in page.get("UserDetailList", []):
                state["users"][user["UserName"].lower()] = user
            for group in page.get("GroupDetailList", []):
                state["groups"][group["GroupName"].lower()] = group
            for role in page.get("RoleDetailList", []):
                state["roles"][role["RoleName"].lower()] = role
            for policy in page.get("Policies", []):
                state["policies"][policy["Arn"]] = policy
    return state


def _default_document(policy: dict) -> Any:
    for version in policy.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return iam.parse_document(version["Document"])
    return None


def _ours(obj: dict) -> bool:
    return obj.get("Path") == _conf("IAM_PATH") and policies.is_managed(obj.get("Tags"))


def _reserved(key: str) -> bool:
    lower = key.lower()
    return lower in {k.lower() for k in policies.RESERVED_TAG_KEYS} or (
        lower.startswith(policies.RESERVED_TAG_PREFIX)
    )


def quiet(obj: Any, since: datetime) -> bool:
    """Changed, pending or synced recently: the worker owns it for now. One
    stopped by a permanent error is not pending: nobody works on it."""
    return (
        (obj.applied_version < obj.desired_version and not obj.error_is_permanent)
        or (obj.last_synced_at is not None and obj.last_synced_at > since)
        or (obj.sync_requested_at is not None and obj.sync_requested_at > since)
    )

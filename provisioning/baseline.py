"""What an account's baseline is: the managed policies opsgate keeps there,
the ARNs of its boundaries and policies, and a fingerprint that changes when a
release or a setting changes any of it (provisioning.sync converges it)."""

import hashlib
import json
from typing import Any

from django.conf import settings

from accounts_app.models import AwsAccount
from provisioning import policies


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


def baseline_documents(account: AwsAccount) -> dict[str, dict]:
    """Every customer-managed policy opsgate keeps in the account, by name."""
    where = {
        "account_id": account.account_id,
        "path": _conf("IAM_PATH"),
        "partition": account.partition,
    }
    documents: dict[str, dict] = {}
    if account.holds_people:
        documents.update(
            policies.group_policies(prefix=_conf("POLICY_PREFIX"), **where)
        )
    if account.holds_roles:
        documents.update(
            policies.role_policies(
                prefix=_conf("POLICY_PREFIX"),
                session_documents=_conf("SESSION_DOCUMENTS"),
                partition=account.partition,
            )
        )
    return documents


def boundary_arns(account: AwsAccount) -> list[str]:
    """The deployment's boundaries this account needs, by what it holds."""
    arns = []
    if account.holds_roles:
        arns.append(boundary_arn(account))
    if account.holds_people:
        arns.append(user_boundary_arn(account))
    return arns


def boundary_arn(account: AwsAccount) -> str:
    """The operation roles' permissions boundary."""
    return managed_policy_arn(account, _conf("ROLE_BOUNDARY_NAME"))


def user_boundary_arn(account: AwsAccount) -> str:
    """The IAM users' (operators') permissions boundary."""
    return managed_policy_arn(account, _conf("USER_BOUNDARY_NAME"))


def managed_policy_arn(account: AwsAccount, name: str) -> str:
    return policies.policy_arn(
        account_id=account.account_id,
        path=_conf("IAM_PATH"),
        name=name,
        partition=account.partition,
    )


def group_policy_arns(account: AwsAccount) -> list[str]:
    names = policies.group_policies(
        prefix=_conf("POLICY_PREFIX"),
        account_id=account.account_id,
        path=_conf("IAM_PATH"),
        partition=account.partition,
    )
    return [managed_policy_arn(account, n) for n in names] + [
        policies.aws_managed_policy_arn(
            policies.AWS_MANAGED_GROUP_POLICY, account.partition
        )
    ]


def role_policy_arns(account: AwsAccount) -> list[str]:
    names = policies.role_policies(
        prefix=_conf("POLICY_PREFIX"),
        session_documents=_conf("SESSION_DOCUMENTS"),
        partition=account.partition,
    )
    return [managed_policy_arn(account, n) for n in names]


def baseline_fingerprint(account: AwsAccount) -> str:
    """Changes when a new release or a setting changes what the baseline holds."""
    material = {
        "documents": baseline_documents(account),
        "boundaries": [_conf("ROLE_BOUNDARY_NAME"), _conf("USER_BOUNDARY_NAME")],
        "group": _conf("GROUP_NAME"),
        "group_policies": group_policy_arns(account),
        "path": _conf("IAM_PATH"),
    }
    if not (account.holds_people and account.holds_roles):
        # Only a one-kind account's fingerprint says so: the ones holding both
        # (every install before kinds existed) keep theirs.
        material["holds"] = [account.holds_people, account.holds_roles]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def baseline_is_current(account: AwsAccount) -> bool:
    return (
        account.applied_version >= account.desired_version
        and account.baseline_fingerprint == baseline_fingerprint(account)
    )

"""AWS calls made while a page or a command waits: the exceptions to "the
worker converges". The default account's id (sts:GetCallerIdentity), a
one-time console password (never stored), and the EC2 instances shown on
My access (cached briefly)."""

import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts_app.models import AwsAccount, IamUser, IamUserState, Project
from accounts_app.services import accounts, people
from provisioning import aws, policies, soft_cache


def account_ensure_default(*, actor: Any = None, name: str = "") -> AwsAccount:
    """The account opsgate's own credentials belong to, found with
    sts:GetCallerIdentity the first time."""
    existing = AwsAccount.objects.filter(is_default=True).first()
    if existing:
        return existing
    return accounts.account_default_add(
        account_id=aws.caller_account_id(), actor=actor, name=name
    )


def console_password_create(*, iam_user: IamUser, actor: Any) -> str:
    """Give the IAM user a console password that must be changed at first
    sign-in. Returned once to the admin; never stored or logged."""
    from django.core.exceptions import ValidationError

    if iam_user.state != IamUserState.ACTIVE or not iam_user.user.is_active:
        raise ValidationError(
            f"{iam_user.name} is offboarded (or their login is disabled): a "
            "console password would let them back into AWS."
        )
    if not iam_user.arn:
        raise ValidationError(
            "The IAM user does not exist in AWS yet; wait until it is in sync."
        )
    state = IamUser.objects.values_list("state", flat=True).get(pk=iam_user.pk)
    if state != IamUserState.ACTIVE:
        # Offboarding disabled the user and deletes it once every trust is
        # rewritten (DESIGN §4.1): a password now would undo the first step.
        raise ValidationError(f"{iam_user.name} is offboarded: no console password.")
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*()-_=+"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(20))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
            and any(not c.isalnum() for c in password)
        ):
            break
    client = aws.client("iam", iam_user.account)
    with aws.aws_action("iam:CreateLoginProfile"):
        client.create_login_profile(
            UserName=iam_user.name, Password=password, PasswordResetRequired=True
        )
    people.console_password_record(iam_user=iam_user, actor=actor)
    return password


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    state: str
    instance_type: str


def _instance(item: dict) -> Instance:
    tags = policies.tag_dict(item.get("Tags"))
    return Instance(
        instance_id=item["InstanceId"],
        name=tags.get("Name", ""),
        state=item.get("State", {}).get("Name", "unknown"),
        instance_type=item.get("InstanceType", ""),
    )


# EC2 takes at most 200 values per filter; ask for fewer per call.
INSTANCE_FILTER_VALUES = 100


def instances_by_project(
    projects: list[Project],
) -> dict[int, tuple[list[Instance], str]]:
    """EC2 instances tagged Project=<name>, per project, in the projects'
    accounts and the configured region: one paginated DescribeInstances per
    account (per 100 projects), not one per project. A project whose account
    cannot be read gets an error message instead."""
    by_account: dict[int, list[Project]] = {}
    for project in projects:
        by_account.setdefault(project.account_id, []).append(project)
    result: dict[int, tuple[list[Instance], str]] = {}
    for group in by_account.values():
        for start in range(0, len(group), INSTANCE_FILTER_VALUES):
            chunk = group[start : start + INSTANCE_FILTER_VALUES]
            key = _instances_cache_key(chunk)
            cached = soft_cache.get(key)
            if cached is not None:
                result.update({p.pk: (cached[p.name], "") for p in chunk})
                continue
            found: dict[str, list[Instance]] = {p.name: [] for p in chunk}
            try:
                client = aws.client("ec2", chunk[0].account)
                with aws.aws_action("ec2:DescribeInstances"):
                    pages = client.get_paginator("describe_instances").paginate(
                        Filters=[{"Name": "tag:Project", "Values": list(found)}]
                    )
                    for page in pages:
                        for reservation in page["Reservations"]:
                            for item in reservation["Instances"]:
                                tag = policies.tag_dict(item.get("Tags")).get("Project")
                                if tag in found:
                                    found[tag].append(_instance(item))
            except aws.AwsError as exc:
                error = f"Could not list the instances: {exc.message}"
                result.update({p.pk: ([], error) for p in chunk})
                continue
            for p in chunk:
                found[p.name].sort(key=lambda i: (i.name, i.instance_id))
                result[p.pk] = (found[p.name], "")
            soft_cache.set(key, found, settings.OPSGATE["INSTANCE_CACHE_SECONDS"])
    return result


def _instances_cache_key(chunk: list[Project]) -> str:
    """Instance lists are cached briefly: a busy My access page must not turn
    every view into a DescribeInstances call (errors are never cached)."""
    names = "\0".join(sorted(p.name for p in chunk))
    digest = hashlib.sha256(names.encode()).hexdigest()[:32]
    return f"opsgate:instances:{chunk[0].account_id}:{digest}"


@dataclass(frozen=True)
class _ProjectIn:
    """A project as seen in one account (its roles may be in several)."""

    pk: tuple[int, int]
    name: str
    account: AwsAccount
    account_id: int


def instances_by_role(roles: list[Any]) -> dict[int, tuple[list[Instance], str]]:
    """EC2 instances tagged with each role's project, in the role's account:
    instances_by_project, per (project, account) pair."""
    places = {
        (r.project_id, r.account_id): _ProjectIn(
            pk=(r.project_id, r.account_id),
            name=r.project.name,
            account=r.account,
            account_id=r.account_id,
        )
        for r in roles
    }
    found = instances_by_project(sorted(places.values(), key=lambda p: p.pk))
    return {r.pk: found[(r.project_id, r.account_id)] for r in roles}


def project_instances(project: Project) -> tuple[list[Instance], str]:
    """EC2 instances tagged Project=<name> in the project's account and the
    configured region, and an error message instead when AWS cannot be read."""
    return instances_by_project([project])[project.pk]


def account_reach_check(account: AwsAccount) -> str:
    """Can opsgate reach the account its way (the provisioner role with its
    external id, or its own credentials)? sts:GetCallerIdentity through it;
    the answer is recorded on the account for its page. Returns the AWS error
    ("" when reached)."""
    from django.utils import timezone

    from provisioning.aws import AwsError

    try:
        seen = aws.account_identity(account)
    except AwsError as exc:
        error = exc.message
    else:
        error = (
            ""
            if seen == account.account_id
            else f"The credentials act in account {seen}, not "
            f"{account.account_id}: check the provisioner role ARN."
        )
    AwsAccount.objects.filter(pk=account.pk).update(
        reach_error=error[:2000], reach_checked_at=timezone.now()
    )
    return error

"""Reads for the pages: what a request looks like to people, how to connect
with a grant, and which EC2 instances carry a project's tag."""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
    RequestStatus,
)
from provisioning import aws, instructions, policies, soft_cache
from provisioning.models import Drift


@dataclass(frozen=True)
class Display:
    key: str  # a badge class: pending, provisioning, active, error, rejected, …
    label: str
    detail: str = ""

    @property
    def is_final(self) -> bool:
        return self.key not in {"pending", "provisioning"}


def request_display(req: AccessRequest) -> Display:
    """The status people see: an approved request is "provisioning" until the
    role's trust lists the requester, then "active" (or the worker's error).
    A grant whose role is known to be missing in AWS is "being restored"."""
    if req.status == RequestStatus.APPROVED:
        if not req.is_active_grant:
            return Display("expired", "Expired")
        if req.provisioned_at and req.role.missing_since:
            return _being_restored(req.role)
        if req.provisioned_at:
            return Display("active", "Active")
        role = req.role
        if role.error_is_permanent:
            return Display(
                "error",
                "Error",
                f"{role.last_error} An admin has been shown this error and can "
                "retry once it is fixed.",
            )
        return Display("provisioning", "Provisioning", role.last_error)
    if req.status == RequestStatus.PENDING:
        return Display("pending", "Waiting for approval")
    return Display(req.status, req.get_status_display())


def _being_restored(role: OperationRole) -> Display:
    """The role, or a policy it needs, was found missing in AWS (deleted
    behind opsgate's back, the account wiped): the grant does not work now."""
    detail = "The role was found missing in AWS."
    if role.error_is_permanent:
        return Display(
            "error",
            "Error",
            f"{detail} {role.last_error} An admin has been shown this error and "
            "can retry once it is fixed.",
        )
    worked_on = role.applied_version < role.desired_version
    if not (worked_on or settings.OPSGATE["RECONCILE_REPAIR"]):
        return Display("error", "Unavailable", f"{detail} An admin has been told.")
    return Display(
        "provisioning",
        "Being restored",
        f"{detail} opsgate is creating it again. {role.last_error}".strip(),
    )


def grant_connection(
    grant: AccessRequest, *, instance_id: str = ""
) -> instructions.Connection:
    role, account = grant.role, grant.role.account
    path = settings.OPSGATE["IAM_PATH"]
    arn = role.arn or policies.role_arn(
        account_id=account.account_id,
        path=path,
        name=role.role_name,
        partition=account.partition,
    )
    return instructions.connection(
        account_id=account.account_id,
        partition=account.partition,
        path=path,
        role_name=role.role_name,
        role_arn=arn,
        iam_user_name=grant.requester.name,
        display_name=f"{role.project.name} as {role.os_user}",
        region=settings.OPSGATE["REGION"],
        instance_id=instance_id,
    )


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


def project_instances(project: Project) -> tuple[list[Instance], str]:
    """EC2 instances tagged Project=<name> in the project's account and the
    configured region, and an error message instead when AWS cannot be read."""
    return instances_by_project([project])[project.pk]


# --- Admin dashboard and drift ------------------------------------------------

DASHBOARD_ROWS = 50


def reconcile_interval() -> timedelta:
    """How often beat runs reconcile (OPSGATE_RECONCILE_SECONDS)."""
    schedule = settings.CELERY_BEAT_SCHEDULE["reconcile"]["schedule"]
    return schedule if isinstance(schedule, timedelta) else timedelta(seconds=schedule)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"


def out_of_sync(model):
    """Rows of a SyncState model that are pending or in error."""
    return model.objects.filter(
        Q(error_is_permanent=True) | Q(applied_version__lt=F("desired_version"))
    )


def dashboard(now=None) -> dict:
    """Everything the admin dashboard shows, in a number of queries that does
    not depend on the number of rows (lists are capped at DASHBOARD_ROWS)."""
    now = now or timezone.now()
    soon = now + timedelta(hours=24)
    active = Q(status=RequestStatus.APPROVED) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    expiring = Q(
        status=RequestStatus.APPROVED, expires_at__gt=now, expires_at__lte=soon
    )
    pending = Q(status=RequestStatus.PENDING)
    totals = AccessRequest.objects.aggregate(
        active=Count("pk", filter=active),
        expiring=Count("pk", filter=expiring),
        pending=Count("pk", filter=pending),
    )
    rows = AccessRequest.objects.select_related(
        "requester__user", "role__project", "role__account"
    )
    overdue_after = 2 * reconcile_interval()
    accounts = list(AwsAccount.objects.order_by("name"))
    for account in accounts:
        # Never reconciled is no alarm while the account is new: beat's first
        # run is still to come (one is asked for a minute after beat starts).
        since = account.last_reconciled_at or account.created_at
        account.reconcile_overdue = now - since > overdue_after
    unsynced_accounts = [a for a in accounts if a.sync_status != "in_sync"]
    users = out_of_sync(IamUser).select_related("account").order_by("name")
    roles = (
        out_of_sync(OperationRole)
        .select_related("project", "account")
        .order_by("role_name")
    )
    return {
        "totals": {
            **totals,
            "out_of_sync": users.count() + roles.count() + len(unsynced_accounts),
            "drift": Drift.objects.filter(resolved_at__isnull=True).count(),
        },
        "expiring": list(rows.filter(expiring).order_by("expires_at")[:DASHBOARD_ROWS]),
        "pending": list(
            rows.filter(pending)
            .prefetch_related("role__project__approvers")
            .order_by("created_at")[:DASHBOARD_ROWS]
        ),
        "unsynced_accounts": unsynced_accounts,
        "unsynced_users": list(users[:DASHBOARD_ROWS]),
        "unsynced_roles": list(roles[:DASHBOARD_ROWS]),
        "accounts": accounts,
        "interval_text": _span(reconcile_interval()),
        "overdue_text": _span(overdue_after),
        "limit": DASHBOARD_ROWS,
        "now": now,
    }


def drift_rows(*, status: str = "", kind: str = "", account=None):
    """Drift for the drift page: open first, then the most recently seen."""
    rows = Drift.objects.select_related("account").order_by(
        F("resolved_at").desc(nulls_first=True), "-last_seen", "object_type", "name"
    )
    if status == "open":
        rows = rows.filter(resolved_at__isnull=True)
    elif status == "resolved":
        rows = rows.filter(resolved_at__isnull=False)
    if kind:
        rows = rows.filter(kind=kind)
    if account is not None:
        rows = rows.filter(account=account)
    return rows

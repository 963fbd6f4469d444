"""Reconcile across accounts (issue 11): one identity account with U people,
A workload accounts with R roles each (reached through their provisioner
roles, moto acting in each account id), every role trusting a few people of
the identity account. Measured: the AWS calls and wall time of each account's
reconcile one after the other, then the periodic task fanning out one
reconcile_account task per account to the running Celery workers."""

import contextlib
import json
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
)
from accounts_app.services import accounts as account_services
from provisioning import aws, baseline, boundaries, policies, sync
from provisioning.sync import outcomes

PATH = "/opsgate/"
PER_ROLE = 3  # people trusted by each role


def workload_id(i: int) -> str:
    return f"{100000000000 + i:012d}"


def seed_people(hub: AwsAccount, users: int) -> list[IamUser]:
    sync.account_baseline_sync(account_id=hub.pk)
    client = aws.client("iam", hub)
    group = outcomes._conf("GROUP_NAME")
    now = timezone.now() - timedelta(hours=1)
    names = [f"u{i:04d}" for i in range(users)]
    for name in names:
        client.create_user(
            UserName=name,
            Path=PATH,
            Tags=policies.user_tags(),
            PermissionsBoundary=baseline.user_boundary_arn(hub),
        )
        client.add_user_to_group(GroupName=group, UserName=name)
    User = get_user_model()
    logins = User.objects.bulk_create(
        [User(username=n, email=f"{n}@example.com") for n in names]
    )
    return IamUser.objects.bulk_create(
        [
            IamUser(
                user=login,
                account=hub,
                name=login.username,
                arn=policies.user_arn(
                    account_id=hub.account_id, path=PATH, name=login.username
                ),
                applied_version=1,
                last_synced_at=now,
                created_in_aws_at=now,
            )
            for login in logins
        ]
    )


def seed_workload(i: int, hub: AwsAccount, people: list[IamUser], roles: int):
    account_id = workload_id(i)
    account = account_services.account_add(
        actor=None,
        account_id=account_id,
        name=f"workload-{i:02d}",
        holds_people=False,
        identity_account_id=hub.account_id,
        assume_role_arn=f"arn:aws:iam::{account_id}:role/opsgate-provisioner",
        external_id=f"bench-{i}",
    )
    boundaries.apply(account=account)
    sync.account_baseline_sync(account_id=account.pk)
    client = aws.client("iam", account)
    now = timezone.now() - timedelta(hours=1)
    members = {
        j: [
            people[(i * roles + j * PER_ROLE + k) % len(people)]
            for k in range(PER_ROLE)
        ]
        for j in range(roles)
    }
    for j in range(roles):
        name = f"w{i:02d}-role-{j:03d}"
        client.create_role(
            RoleName=name,
            Path=PATH,
            AssumeRolePolicyDocument=json.dumps(
                policies.trust_policy(sorted(p.arn for p in members[j]))
            ),
            Tags=policies.role_tags(project=f"Project {j}", os_user="ops"),
            MaxSessionDuration=outcomes._conf("MAX_SESSION_DURATION"),
            PermissionsBoundary=baseline.boundary_arn(account),
            Description="opsgate operation role, run as ops",
        )
        for policy in baseline.role_policy_arns(account):
            client.attach_role_policy(RoleName=name, PolicyArn=policy)
    with transaction.atomic():
        projects = Project.objects.bulk_create(
            [Project(name=f"Project {j}", account=account) for j in range(roles)]
        )
        rows = OperationRole.objects.bulk_create(
            [
                OperationRole(
                    project=projects[j],
                    account=account,
                    os_user="ops",
                    role_name=f"w{i:02d}-role-{j:03d}",
                    applied_version=1,
                    last_synced_at=now,
                    exists_in_aws=True,
                )
                for j in range(roles)
            ]
        )
        AccessRequest.objects.bulk_create(
            [
                AccessRequest(
                    requester=p,
                    role=rows[j],
                    reason="bench",
                    status="approved",
                    decided_at=now,
                    provisioned_at=now,
                )
                for j in range(roles)
                for p in members[j]
            ]
        )
    AwsAccount.objects.filter(pk=account.pk).update(last_synced_at=now)
    return account


def seed(workloads: int, roles: int, users: int) -> list[AwsAccount]:
    hub = AwsAccount.objects.get(is_default=True)
    AwsAccount.objects.filter(pk=hub.pk).update(holds_roles=False)
    hub.refresh_from_db()
    people = seed_people(hub, users)
    return [seed_workload(i, hub, people, roles) for i in range(workloads)]


# Real IAM answers in tens to hundreds of milliseconds; moto on loopback in
# about one. The latency runs add this much to each read a reconcile makes
# (the workers get it through tests/slowaws/sitecustomize.py).
LATENCY_SECONDS = 0.25
LATENCY_OPS = "AssumeRole,GetAccountAuthorizationDetails,GetAccountSummary"


def latency_env() -> dict[str, str]:
    import os
    from pathlib import Path

    slow = str(Path(__file__).resolve().parents[1] / "tests" / "slowaws")
    return {
        "PYTHONPATH": os.pathsep.join(
            p for p in (slow, os.environ.get("PYTHONPATH")) if p
        ),
        "OPSGATE_TEST_SLOW_AWS_OPS": LATENCY_OPS,
        "OPSGATE_TEST_SLOW_AWS_SECONDS": str(LATENCY_SECONDS),
    }


@contextlib.contextmanager
def latency(seconds: float):
    """The same delay in this process (the serial runs)."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call
    ops = set(LATENCY_OPS.split(","))

    def slow(self, operation_name, api_params):
        if seconds and operation_name in ops:
            time.sleep(seconds)
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = slow
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original


def serial(workloads: list[AwsAccount], delay: float = 0.0) -> dict:
    """Each workload account's reconcile in turn, in this process."""
    from provisioning import reconcile

    per_account = []
    aws.reset_clients()  # every account assumes its role again, as a task does
    for account in workloads:
        started = time.monotonic()
        with aws.observe_calls() as calls, latency(delay):
            report = reconcile.reconcile_account(account, repair=False)
        per_account.append(
            {
                "seconds": time.monotonic() - started,
                "calls": len(calls),
                "findings": len(report.found),
            }
        )
    seconds = [a["seconds"] for a in per_account]
    calls = [a["calls"] for a in per_account]
    return {
        "serial_sum_s": round(sum(seconds), 1),
        "slowest_account_s": round(max(seconds), 2),
        "calls_per_account": f"{min(calls)}-{max(calls)}",
        "findings": sum(a["findings"] for a in per_account),
    }


def fan_out(workloads: list[AwsAccount]) -> dict:
    """parallel() twice: the first run also pays each worker process's first
    boto3 clients (service models loaded, roles assumed); the second is the
    steady state of an hourly reconcile."""
    cold = parallel(workloads)
    warm = parallel(workloads)
    return {
        "parallel_first_s": cold["parallel_s"],
        "parallel_s": warm["parallel_s"],
        "unreachable": warm["unreachable"],
    }


def parallel(workloads: list[AwsAccount], timeout: float = 900) -> dict:
    """The periodic task: one reconcile_account task per account, run by the
    workers already started; timed until every account is reconciled."""
    from provisioning import tasks

    started_at = timezone.now()
    started = time.monotonic()
    tasks.reconcile_accounts.delay()
    pks = [a.pk for a in workloads]
    while time.monotonic() - started < timeout:
        done = AwsAccount.objects.filter(
            pk__in=pks, last_reconciled_at__gte=started_at
        ).count()
        if done == len(pks):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("the reconcile tasks did not finish in time")
    unreachable = AwsAccount.objects.filter(pk__in=pks).exclude(reach_error="")
    return {
        "parallel_s": round(time.monotonic() - started, 1),
        "unreachable": unreachable.count(),
    }

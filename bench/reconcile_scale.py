"""Reconcile at scale: N users, M roles and G grants already in sync in the
database and in moto; one reconcile pass, counting AWS calls, time and memory."""

import json
import time
import tracemalloc
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
from provisioning import aws, baseline, policies, sync
from provisioning.sync import outcomes


def seed(account: AwsAccount, users: int, roles: int, grants: int) -> None:
    """Write the database and AWS directly (as if opsgate had synced them)."""
    path = "/opsgate/"
    sync.account_baseline_sync(account_id=account.pk)
    client = aws.client("iam", account)
    group = outcomes._conf("GROUP_NAME")
    now = timezone.now() - timedelta(hours=1)
    names = [f"u{i:05d}" for i in range(users)]
    arn = {
        n: policies.user_arn(account_id=account.account_id, path=path, name=n)
        for n in names
    }
    for name in names:
        client.create_user(
            UserName=name,
            Path=path,
            Tags=policies.user_tags(),
            PermissionsBoundary=baseline.user_boundary_arn(account),
        )
        client.add_user_to_group(GroupName=group, UserName=name)
    per_role = max(1, grants // roles)
    role_members = {
        j: [names[(j * per_role + k) % users] for k in range(per_role)]
        for j in range(roles)
    }
    for j in range(roles):
        client.create_role(
            RoleName=f"role-{j:04d}",
            Path=path,
            AssumeRolePolicyDocument=json.dumps(
                policies.trust_policy([arn[n] for n in role_members[j]])
            ),
            Tags=policies.role_tags(project=f"Project {j}", os_user="ops"),
            MaxSessionDuration=outcomes._conf("MAX_SESSION_DURATION"),
            PermissionsBoundary=baseline.boundary_arn(account),
            Description="opsgate operation role, run as ops",
        )
        for policy in baseline.role_policy_arns(account):
            client.attach_role_policy(RoleName=f"role-{j:04d}", PolicyArn=policy)
    User = get_user_model()
    with transaction.atomic():
        logins = User.objects.bulk_create(
            [User(username=n, email=f"{n}@example.com") for n in names]
        )
        people = IamUser.objects.bulk_create(
            [
                IamUser(
                    user=login,
                    account=account,
                    name=login.username,
                    arn=arn[login.username],
                    applied_version=1,
                    last_synced_at=now,
                    created_in_aws_at=now,
                )
                for login in logins
            ]
        )
        by_name = {p.name: p for p in people}
        projects = Project.objects.bulk_create(
            [Project(name=f"Project {j}", account=account) for j in range(roles)]
        )
        role_rows = OperationRole.objects.bulk_create(
            [
                OperationRole(
                    project=projects[j],
                    account=account,
                    os_user="ops",
                    role_name=f"role-{j:04d}",
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
                    requester=by_name[n],
                    role=role_rows[j],
                    reason="bench",
                    status="approved",
                    decided_at=now,
                    provisioned_at=now,
                )
                for j in range(roles)
                for n in role_members[j]
            ]
        )


def measure(users: int, roles: int, grants: int) -> dict:
    from provisioning import reconcile

    account = AwsAccount.objects.get(is_default=True)
    started = time.monotonic()
    seed(account, users, roles, grants)
    seeded = time.monotonic() - started
    tracemalloc.start()
    started = time.monotonic()
    with aws.observe_calls() as calls:
        report = reconcile.reconcile_account(
            account, repair=False, now=timezone.now() + timedelta(hours=1)
        )
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "users": users,
        "roles": roles,
        "grants": grants,
        "seed_s": round(seeded, 1),
        "aws_calls": len(calls),
        "calls_by_operation": {c: calls.count(c) for c in sorted(set(calls))},
        "findings": len(report.found),
        "wall_s": round(elapsed, 2),
        "peak_python_mb": round(peak / 2**20, 1),
    }

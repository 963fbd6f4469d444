"""Latency of the main pages with 10,000 people and 100,000 requests in
PostgreSQL, served by gunicorn, under 20 concurrent clients (wrk) on loopback."""

import re
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts_app.models import IamUser
from provisioning.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    OperationRole,
    Project,
    RequestStatus,
)

# wrk prints these after the run (Lua: the percentiles wrk --latency lacks).
REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("P50 %d\\nP95 %d\\nP99 %d\\nREQUESTS %d\\nERRORS %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.requests, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

FINISHED = [
    RequestStatus.REJECTED,
    RequestStatus.EXPIRED,
    RequestStatus.REVOKED,
    RequestStatus.CANCELLED,
]


def seed(people: int, requests: int, projects: int = 100, roles_per_project: int = 4):
    account = AwsAccount.objects.get(is_default=True)
    User = get_user_model()
    now = timezone.now()
    with transaction.atomic():
        logins = User.objects.bulk_create(
            [
                User(username=f"p{i:05d}", email=f"p{i:05d}@example.com")
                for i in range(people)
            ],
            batch_size=2000,
        )
        admin = logins[0]
        admin.is_staff = admin.is_superuser = True
        admin.save()
        persons = IamUser.objects.bulk_create(
            [
                IamUser(
                    user=u,
                    account=account,
                    name=u.username,
                    applied_version=1,
                    arn=f"arn:aws:iam::{account.account_id}:user/opsgate/{u.username}",
                )
                for u in logins
            ],
            batch_size=2000,
        )
        project_rows = Project.objects.bulk_create(
            [
                Project(
                    name=f"Project {j:03d}",
                    account=account,
                    allowed_durations=[1, 8, 24],
                )
                for j in range(projects)
            ]
        )
        approver = logins[1]
        for project in project_rows[:2]:
            project.approvers.add(approver)
        roles = OperationRole.objects.bulk_create(
            [
                OperationRole(
                    project=p,
                    account=account,
                    os_user=f"ops{k}",
                    role_name=f"r{p.pk}-{k}",
                    applied_version=1,
                )
                for p in project_rows
                for k in range(roles_per_project)
            ]
        )
        per_person = max(1, requests // people)
        rows = []
        for i, person in enumerate(persons):
            for k in range(per_person):
                role = roles[(i * 7 + k) % len(roles)]
                if k == 0:
                    status = RequestStatus.APPROVED
                elif k == 1 and i % 10 == 0:
                    status = RequestStatus.PENDING
                else:
                    status = FINISHED[(i + k) % len(FINISHED)]
                alone = wrk(base_url + path, cookies[persona], seconds=5, connections=1)
        loaded = wrk(
            base_url + path, cookies[persona], seconds=seconds, connections=connections
        )
        rows.append(
            {"page": page, "as": persona, "alone_p50_ms": alone["p50_ms"], **loaded}
        )
    return rows

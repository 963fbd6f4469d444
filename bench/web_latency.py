"""Latency of the main pages with 10,000 people and 100,000 requests in
PostgreSQL, served by gunicorn, under 20 concurrent clients on loopback:
back to back (wrk; each client asks again as soon as it has its answer: the
machine's throughput decides the latency) and paced (a thread a client; each
starts at a random moment of the first 1.5 s and waits 0.5 to 1.5 s between
pages, as people click: the page's own time and the queueing of chance bursts
decide it). The machine's CPU time per answer (all processes,
/proc/stat) says how many answers a second the 2 cores can give at most."""

import http.client
import os
import random
import re
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
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

# Paced clients: a pause of 0.5 to 1.5 s between a client's pages, and a
# start spread over the first 1.5 s (wrk's delay() cannot hold back a
# connection's first request: its 20 first requests would come at once).
PAUSE_S = (0.5, 1.5)

FINISHED = [
    RequestStatus.REJECTED,
    RequestStatus.EXPIRED,
    RequestStatus.REVOKED,
    RequestStatus.CANCELLED,
]
ENDED = {RequestStatus.EXPIRED, RequestStatus.REVOKED}


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
                # A grant that ended was closed in AWS by the worker, which
                # recorded each step (DESIGN §4.1): the dashboard lists only
                # those whose steps are not all done.
                closed = now if status in ENDED else None
                rows.append(
                    AccessRequest(
                        ended_at=closed,
                        deny_written_at=closed,
                        trust_removed_at=closed,
                        sessions_ended_at=closed,
                        requester=person,
                        role=role,
                        reason="bench",
                        duration_hours=8,
                        status=status,
                        created_at=now - timedelta(minutes=i + k),
                        decided_at=now if status != RequestStatus.PENDING else None,
                        expires_at=now + timedelta(hours=8)
                        if status == RequestStatus.APPROVED
                        else None,
                        provisioned_at=now
                        if status == RequestStatus.APPROVED
                        else None,
                    )
                )
        AccessRequest.objects.bulk_create(rows, batch_size=5000)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    actor_repr="bench",
                    action="request.create",
                    object_type="accounts_app.accessrequest",
                    object_id=str(n),
                    object_repr=f"#{n}",
                )
                for n in range(requests)
            ],
            batch_size=5000,
        )
    requester = logins[2]
    return {"admin": admin, "approver": approver, "requester": requester}


def session_cookie(user) -> str:
    from allauth.mfa.totp.internal.auth import TOTP

    if user.is_staff or user.approver_of.exists():
        TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _busy_ms() -> float:
    """CPU time the whole machine has spent so far, all cores (ms)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def wrk(url: str, cookie: str, *, seconds: int, connections: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "report.lua"
    script.write_text(REPORT)
    busy = _busy_ms()
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, connections)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            str(script),
            "-H",
            f"Cookie: sessionid={cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    busy = _busy_ms() - busy
    values = dict(re.findall(r"^(P50|P95|P99|REQUESTS|ERRORS) (\d+)$", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    return {
        "p50_ms": round(int(values["P50"]) / 1000, 1),
        "p95_ms": round(int(values["P95"]) / 1000, 1),
        "p99_ms": round(int(values["P99"]) / 1000, 1),
        "requests": int(values["REQUESTS"]),
        "errors": int(values["ERRORS"]),
        "req_per_s": float(rps),
        "cpu_ms_per_req": round(busy / max(1, int(values["REQUESTS"])), 1),
    }


def paced(url: str, cookie: str, *, seconds: int, clients: int) -> dict:
    """`clients` people clicking: each starts within the first PAUSE_S[1]
    seconds, then waits PAUSE_S between the answer and its next page. A
    thread a client (they sleep almost all the time); a new connection a page,
    as gunicorn's sync workers close each one."""
    host, _, path = url.removeprefix("http://").partition("/")
    latencies, errors = [], []
    deadline = time.monotonic() + seconds

    def client(rng: random.Random) -> None:
        time.sleep(rng.uniform(0, PAUSE_S[1]))
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection(host, timeout=30)
            started = time.perf_counter()
            try:
                conn.request(
                    "GET", "/" + path, headers={"Cookie": f"sessionid={cookie}"}
                )
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    errors.append(answer.status)
            except OSError as exc:
                errors.append(exc)
            finally:
                conn.close()
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(rng.uniform(*PAUSE_S))

    threads = [
        threading.Thread(target=client, args=(random.Random(n),))
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": round(cuts[49], 1),
        "p95_ms": round(cuts[94], 1),
        "req_per_s": round(len(latencies) / seconds, 1),
        "errors": len(errors),
    }


PAGES = [
    ("my access", "requester", "/"),
    ("request access", "requester", "/request/"),
    ("approvals", "approver", "/approvals/"),
    ("people", "admin", "/people/"),
    ("people, search", "admin", "/people/?q=p0999"),
    ("projects", "admin", "/projects/"),
    ("audit log", "admin", "/audit/"),
]


def settle() -> None:
    """Statistics and the visibility map after the bulk insert, as autovacuum
    keeps them on a database in use: without them PostgreSQL plans the people
    search as sequential scans (17.4 ms a page instead of 10 on gunicorn) and
    cannot answer from an index alone. VACUUM runs outside a transaction."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def measure(
    base_url: str, people: int, requests: int, seconds: int = 10, connections: int = 20
) -> list[dict]:
    personas = seed(people, requests)
    settle()
    cookies = {name: session_cookie(user) for name, user in personas.items()}
    rows = []
    for page, persona, path in PAGES:
        # One request first: the page must answer 200 for this persona.
        check = Client()
        check.cookies["sessionid"] = cookies[persona]
        status = check.get(path, HTTP_HOST="127.0.0.1").status_code
        assert status == 200, f"{path} as {persona}: {status}"
        url = base_url + path
        # One client: the page's own time. Then 20: what queueing adds.
        alone = wrk(url, cookies[persona], seconds=5, connections=1)
        loaded = wrk(url, cookies[persona], seconds=seconds, connections=connections)
        people_clicking = paced(
            url, cookies[persona], seconds=3 * seconds, clients=connections
        )
        rows.append(
            {
                "page": page,
                "as": persona,
                "alone_p50_ms": alone["p50_ms"],
                "alone_cpu_ms": alone["cpu_ms_per_req"],
                **loaded,
                "paced_p50_ms": people_clicking["p50_ms"],
                "paced_p95_ms": people_clicking["p95_ms"],
                "paced_req_per_s": people_clicking["req_per_s"],
                "paced_errors": people_clicking["errors"],
            }
        )
    return rows

"""The benchmark sections: each starts from a fresh database and moto,
measures one thing (bench/README.md) and prints it as a Markdown table."""

import os
import subprocess
import time

from bench.processes import finish, reset_moto, start_gunicorn, start_worker, stop

# The pool processes of the worker of the approval sections (scripts/demo.sh's).
WORKER_PROCESSES = 2


def fresh_database() -> None:
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [row[0] for row in cursor.fetchall()]
        if tables:
            cursor.execute(
                "DROP TABLE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"
            )
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # when CACHE_URL is unset


def default_account():
    from accounts_app.models import AwsAccount

    return AwsAccount.objects.create(
        account_id="123456789012", name="bench", is_default=True
    )


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def fresh(moto_url: str) -> None:
    from provisioning import boundaries
    from tests.workers import reset_broker

    fresh_database()
    reset_moto(moto_url)
    boundaries.apply()  # the deployment step (manage.py opsgate_boundaries --apply)
    default_account()
    reset_broker()


def section_calls(moto_url: str, quick: bool) -> None:
    from bench import aws_calls

    fresh(moto_url)
    rows = aws_calls.measure()
    print("## AWS calls per operation (target: writes = minimum, reads <= 2)\n")
    print(table(rows, ["operation", "reads", "writes", "minimum_writes"]) + "\n")


def section_latency(moto_url: str, quick: bool) -> None:
    from bench import approval_latency

    approvals = 40 if quick else 200
    print(
        f"## Approval to active: {approvals} approvals over HTTP (target: p50 "
        "<= 3x, p95 <= 5x the bare boto3 calls)\n"
    )
    fresh(moto_url)
    web = start_gunicorn()
    # Two pool processes, as scripts/demo.sh runs the worker (compose: 4): the
    # e-mails and the readiness check an approval queues then run beside the
    # next approval's sync, not before it.
    worker = start_worker("latency", concurrency=WORKER_PROCESSES)
    try:
        figures = approval_latency.measure(
            web, moto_url, approvals, roles=20, in_process=10 if quick else 40
        )
    finally:
        finish(worker)
        stop(web)
    parts = figures.pop("parts")
    print(table([figures], list(figures)) + "\n")
    print("Its parts, one at a time in the bench process (no HTTP, no Celery):\n")
    print(table([parts], list(parts)) + "\n")


def section_path(moto_url: str, quick: bool) -> None:
    from bench import whole_path

    runs = 10 if quick else 50
    print(
        f"## A person's whole path: {runs} requests, each approved at once, "
        "until a session (request POST, approve POST, worker, status poll, "
        "sts:AssumeRole)\n"
    )
    fresh(moto_url)
    web = start_gunicorn()
    worker = start_worker("path", concurrency=WORKER_PROCESSES)
    try:
        figures = whole_path.measure(web, moto_url, runs)
    finally:
        finish(worker)
        stop(web)
    print(table([figures], list(figures)) + "\n")


def section_onboarding(moto_url: str, quick: bool) -> None:
    from bench import onboarding

    users, roles = (100, 20) if quick else (1000, 200)
    print(
        f"## Bulk onboarding: {users} users, {roles} roles (target: < 60 s with "
        "2 workers)\n"
    )
    results = []
    for workers in (1, 2):
        fresh(moto_url)
        procs = [start_worker(f"bench{i}", concurrency=1) for i in range(workers)]
        try:
            figures = onboarding.measure(users, roles)
        finally:
            for proc in procs:
                finish(proc)
        results.append({"workers": workers, **figures})
    print(table(results, ["workers", "users", "roles", "import_s", "total_s"]) + "\n")


def section_reconcile(moto_url: str, quick: bool) -> None:
    from bench import reconcile_scale

    users, roles, grants = (200, 50, 500) if quick else (2000, 500, 5000)
    print(
        f"## Reconcile at scale: {users} users, {roles} roles, {grants} grants "
        "(target: calls grow with pages, not entities; peak < 300 MB)\n"
    )
    fresh(moto_url)
    figures = reconcile_scale.measure(users, roles, grants)
    calls = figures.pop("calls_by_operation")
    print(table([figures], list(figures)) + "\n")
    print(f"AWS calls by operation: {calls}\n")


def section_accounts(moto_url: str, quick: bool) -> None:
    from bench import reconcile_accounts

    workloads, roles, users = (4, 20, 30) if quick else (20, 100, 100)
    workers, slots = 2, (2 if quick else 11)  # prefork processes: one per account
    print(
        f"## Reconcile across accounts: {workloads} workload accounts x {roles} "
        f"roles, {users} people in the identity account (target: parallel about "
        "the slowest account, not the sum; calls per account O(pages))\n"
    )
    fresh(moto_url)
    started = time.monotonic()
    accounts = reconcile_accounts.seed(workloads, roles, users)
    print(f"seeded in {time.monotonic() - started:.0f} s\n")
    rows = []
    for delay in (0.0, reconcile_accounts.LATENCY_SECONDS):
        env = reconcile_accounts.latency_env() if delay else {}
        figures = {
            "added_latency_s": delay,
            **reconcile_accounts.serial(accounts, delay),
        }
        procs = [
            start_worker(f"acct{i}", concurrency=slots, env=env) for i in range(workers)
        ]
        try:
            figures.update(reconcile_accounts.fan_out(accounts))
        finally:
            for proc in procs:
                finish(proc)
        figures["worker_slots"] = workers * slots
        rows.append(figures)
    print(table(rows, list(rows[0])) + "\n")


def section_web(moto_url: str, quick: bool) -> None:
    import shutil

    from bench import web_latency

    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True
        )
    people, requests = (1000, 10000) if quick else (10000, 100000)
    print(
        f"## Web pages: {people} people, {requests} requests, gunicorn (4 workers), "
        "20 concurrent clients (wrk, 10 s a page; target: p95 < 150 ms): back to "
        "back, then paced (30 s, 0.5-1.5 s between a client's pages, starts spread)\n"
    )
    fresh(moto_url)
    web = start_gunicorn(workers=4)
    try:
        rows = web_latency.measure(web, people, requests)
    finally:
        stop(web)
    print(
        table(
            rows,
            [
                "page",
                "as",
                "alone_p50_ms",
                "alone_cpu_ms",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "req_per_s",
                "errors",
                "cpu_ms_per_req",
                "paced_p50_ms",
                "paced_p95_ms",
                "paced_req_per_s",
                "paced_errors",
            ],
        )
        + "\n"
    )


def section_api(moto_url: str, quick: bool) -> None:
    from bench import api_latency

    people, calls, runs = (1000, 30, 2) if quick else (10000, 100, 3)
    print(
        f"## API: {people} people, {people * 10} requests, gunicorn (4 workers), "
        f"one client, {calls} calls each; then `opsgate request --wait` vs the "
        f"web form, {runs} runs each, 1 worker against moto\n"
    )
    fresh(moto_url)
    # The rate limit per token is not what is measured here.
    os.environ["OPSGATE_API_RATE_PER_MINUTE"] = "1000000"
    web = start_gunicorn(workers=4)
    worker = start_worker("api", concurrency=1)
    try:
        rows = api_latency.measure_calls(web, people, people * 10, calls)
        print(table(rows, ["call", "n", "p50_ms", "p95_ms"]) + "\n")
        rows = api_latency.measure_wait(web, runs)
        print(table(rows, ["path", "n", "p50_ms", "p95_ms"]) + "\n")
    finally:
        finish(worker)
        stop(web)


SECTIONS = {
    "calls": section_calls,
    "latency": section_latency,
    "path": section_path,
    "onboarding": section_onboarding,
    "reconcile": section_reconcile,
    "accounts": section_accounts,
    "web": section_web,
    "api": section_api,
}

"""Run every benchmark and print the figures (see bench/README.md).

    .venv/bin/python bench/run.py [--quick]

Uses the machine's PostgreSQL (a fresh database `opsgate_bench`) and Redis
(db 12), a moto server process on loopback, and real Celery worker processes.
"""

import argparse
import atexit
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# Everything this run starts, oldest first: Popen objects and test Workers
# (which run in their own session, so a terminal's Ctrl-C never reaches them).
_children: list = []


def track(child):
    _children.append(child)
    return child


def stop_children() -> None:
    """Stop what this run started, newest first (workers before moto)."""
    while _children:
        child = _children.pop()
        try:
            _stop(child)
        except Exception as exc:  # keep stopping the others
            print(f"could not stop {child}: {exc}", file=sys.stderr)


def finish(child) -> None:
    """Stop one child now (the end of a section)."""
    if child in _children:
        _children.remove(child)
    _stop(child)


def _stop(child) -> None:
    if not isinstance(child, subprocess.Popen):
        child.stop()  # a Worker: SIGTERM to its process group, then SIGKILL
    elif child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def _on_signal(signum, frame) -> None:
    for other in HANDLED_SIGNALS:  # a second Ctrl-C must not cut the cleanup
        signal.signal(other, signal.SIG_IGN)
    stop_children()
    sys.exit(128 + signum)


HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_signal_handlers() -> None:
    """SIGTERM, SIGINT and SIGHUP stop every child before the run exits (by
    default SIGTERM and SIGHUP end Python without running any cleanup)."""
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, _on_signal)
    atexit.register(stop_children)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # moto_server with IAM user permissions boundaries (provisioning/moto_ext.py).
    proc = spawn(
        [
            sys.executable,
            "-m",
            "provisioning.moto_ext",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    return track(subprocess.Popen(args, **kwargs))


def start_worker(name: str, **kwargs):
    """A Celery worker (tests.workers.Worker), stopped with the run."""
    from tests.workers import Worker

    return track(Worker(name, **kwargs)).wait_ready()


_gunicorn: list[subprocess.Popen] = []


def start_gunicorn(workers: int = 2) -> str:
    port = free_port()
    proc = spawn(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "portal.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    _gunicorn.append(proc)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def stop(url: str) -> None:
    for proc in _gunicorn:
        finish(proc)
    _gunicorn.clear()


def reset_moto(url: str) -> None:
    request = urllib.request.Request(url + "/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).read()


def prepare_environment(db: str, broker: str) -> tuple[subprocess.Popen, str]:
    moto, url = start_moto()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": db,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "LOG_LEVEL": "WARNING",
            "OPSGATE_VAR_DIR": str(ROOT / "var" / "bench"),
            # moto has no Session Manager sessions and no service-specific
            # credentials API (as in the demo).
            "OPSGATE_TERMINATE_SSM_SESSIONS": "false",
            "OPSGATE_DELETE_SERVICE_CREDENTIALS": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            # As deployed: no debug mode (cached templates, no SQL recording).
            "DJANGO_DEBUG": "false",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    # The shared cache (rate limits, used TOTP codes, throttling) in Redis, as
    # deployed (docs/settings.md), not a database table.
    os.environ.setdefault("CACHE_URL", broker.split("?")[0] + "?key_prefix=bench-cache")
    import django

    django.setup()
    return moto, url


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
    worker = start_worker("latency", concurrency=1)
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
    worker = start_worker("path", concurrency=1)
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
        "20 concurrent clients (wrk, 10 s a page; target: p95 < 150 ms)\n"
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
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "req_per_s",
                "requests",
                "errors",
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument(
        "--db", default="postgres://postgres@127.0.0.1:5432/opsgate_bench"
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    install_signal_handlers()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            f"CREATE DATABASE {args.db.rsplit('/', 1)[1]}",
        ],
        capture_output=True,
    )
    moto, moto_url = prepare_environment(args.db, args.broker)
    print(
        f"# opsgate benchmarks — {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}\n"
    )
    try:
        for name in args.only or SECTIONS:
            started = time.monotonic()
            SECTIONS[name](moto_url, args.quick)
            print(f"({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    finally:
        stop_children()


if __name__ == "__main__":
    main()

"""One client, in process: how long each list page takes to answer (view,
queries and template; no HTTP) with 10,000 people and 100,000 requests in
PostgreSQL, and how many queries it runs. Prints one row per page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a db of yours> \\
        .venv/bin/python bench/page_timings.py [--people 10000] [--requests 100000]

The database is emptied (schema public dropped) and migrated first: give it a
database of its own. The seed is bench/web_latency.py's (100 projects of 4
roles, one grant per person, a pending request for one person in ten, the rest
finished, one audit row per request)."""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
os.environ.setdefault("CACHE_URL", "locmem://")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--only", action="append", help="a page's label (repeatable): these only"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the data of an earlier run of the same sizes (migrated again)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="per page: each query's time in the database (EXPLAIN ANALYZE)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="per page: where the Python time goes (cProfile, 20 functions)",
    )
    args = parser.parse_args()

    # "My access" reads the tagged EC2 instances (cached briefly): a moto
    # server in this process answers.
    from moto.server import ThreadedMotoServer

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1"
    )
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    from accounts_app.models import AccessRequest, AwsAccount, OperationRole
    from bench import web_latency

    personas = _reused(args) if args.reuse else None
    if personas is None:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        call_command("migrate", verbosity=0)
        AwsAccount.objects.create(
            account_id="123456789012", name="bench", is_default=True
        )
        started = time.perf_counter()
        personas = web_latency.seed(args.people, args.requests)
        print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    web_latency.settle()

    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    clients = {}
    for name, user in personas.items():
        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP)
        if (user.is_staff or user.approver_of.exists()) and not totp.exists():
            TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        clients[name] = client
    requester = personas["requester"]
    moving = list(
        AccessRequest.objects.filter(requester__user=requester).values_list(
            "pk", flat=True
        )[:5]
    )
    project = OperationRole.objects.order_by("pk").first().project_id
    pages = [
        ("my access", "requester", "/"),
        ("request access", "requester", "/request/"),
        (
            "status poll",
            "requester",
            "/requests/status.json?ids=" + ",".join(map(str, moving)),
        ),
        ("approvals", "approver", "/approvals/"),
        ("dashboard", "admin", "/dashboard/"),
        ("people", "admin", "/people/"),
        ("people, search", "admin", "/people/?q=p0999"),
        ("projects", "admin", "/projects/"),
        ("project detail", "admin", f"/projects/{project}/"),
        ("audit log", "admin", "/audit/"),
        ("drift", "admin", "/drift/"),
    ]
    if args.only:
        pages = [page for page in pages if page[0] in args.only]
    from bench import machine

    print(f"{machine.describe()}\n")
    print("| page | p50 ms | p90 ms | CPU ms (Python + PostgreSQL) | queries |")
    print("|---|---|---|---|---|")
    for label, who, path in pages:
        client = clients[who]
        for _ in range(3):  # warm: caches, prepared plans, imports
            assert client.get(path).status_code == 200, path
        queries = []

        def count(execute, sql, *rest, seen=queries):
            seen.append(sql)
            return execute(sql, *rest)

        with connection.execute_wrapper(count):
            client.get(path)
        times = []
        cpu = _cpu()
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, path
        spent = [after - before for after, before in zip(_cpu(), cpu, strict=True)]
        python, postgres = (ms / args.runs for ms in spent)
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        print(
            f"| {label} | {statistics.median(times):.1f} | {p90:.1f} "
            f"| {python + postgres:.1f} ({python:.1f} + {postgres:.1f}) "
            f"| {len(queries)} |"
        )
        if args.explain:
            _explain(client, path)
        if args.profile:
            _profile(client, path)


def _cpu() -> tuple[float, float]:
    """CPU time used so far (ms) by this process and by its PostgreSQL backend
    (/proc/<pid>/schedstat, in nanoseconds): what a page costs, whatever else
    runs on the machine, unlike its wall time."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        with open(f"/proc/{backend}/schedstat") as stat:
            postgres = int(stat.read().split()[0]) / 1e6
    except OSError:  # PostgreSQL on another machine: its part is not known
        postgres = 0.0
    return time.process_time() * 1000, postgres


def _reused(args):
    """The personas of an earlier seed of the same sizes, or None."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import DatabaseError

    from accounts_app.models import AccessRequest

    try:
        seeded = AccessRequest.objects.count() == args.requests
    except DatabaseError:
        return None
    if not seeded:
        return None
    call_command("migrate", verbosity=0)
    logins = get_user_model().objects.filter(
        username__in=["p00000", "p00001", "p00002"]
    )
    by_name = {u.username: u for u in logins}
    return {
        "admin": by_name["p00000"],
        "approver": by_name["p00001"],
        "requester": by_name["p00002"],
    }


def _explain(client, path: str) -> None:
    """Each query of one answer with its database time (EXPLAIN ANALYZE) and,
    for the slower ones, the plan's top line."""
    from django.db import connection

    seen = []

    def keep(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        client.get(path)
    for sql, params in seen:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        plan = plan[0] if isinstance(plan, list) else plan
        took = plan["Planning Time"] + plan["Execution Time"]
        top = plan["Plan"]
        print(f"    {took:7.2f} ms  {top['Node Type']:<18} {sql[:150]}")


def _profile(client, path: str) -> None:
    import cProfile
    import pstats

    # CPU time, not wall time: waiting on PostgreSQL or on other processes
    # of a busy machine is not where this process spends its work.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(5):
        client.get(path)
    profiler.disable()
    stats = pstats.Stats(profiler)
    ours = r"opsgate|portal|accounts_app|provisioning|template"
    stats.sort_stats("cumulative").print_stats(ours, 40)
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

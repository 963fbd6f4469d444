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
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    from accounts_app.models import AccessRequest, AwsAccount, OperationRole
    from bench import web_latency

    AwsAccount.objects.create(account_id="123456789012", name="bench", is_default=True)
    started = time.perf_counter()
    personas = web_latency.seed(args.people, args.requests)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    from allauth.mfa.totp.internal.auth import TOTP

    clients = {}
    for name, user in personas.items():
        if user.is_staff or user.approver_of.exists():
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
    print("| page | p50 ms | p90 ms | queries |")
    print("|---|---|---|---|")
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
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, path
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        print(
            f"| {label} | {statistics.median(times):.1f} | {p90:.1f} | {len(queries)} |"
        )


if __name__ == "__main__":
    main()

"""Approval to active: POST the approve form over HTTP (gunicorn, the real
view), a real Celery worker on Redis converges the role in moto; time until the
request is active (the role's trust holds the user). Compared with the bare
boto3 calls that change needs, sent straight to the same moto server."""

import json
import re
import statistics
import time

import boto3
import requests
from django.test import Client

from accounts_app import trust as trust_rules
from accounts_app.models import AccessRequest, AwsAccount
from accounts_app.services import access_requests, people, projects
from accounts_app.services import roles as role_services
from provisioning import policies, sync


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(approvals: int, roles: int):
    """Roles that exist in AWS (one grant each), requesters already in IAM, and
    one pending request per approval to make."""
    from allauth.mfa.totp.internal.auth import TOTP

    account = AwsAccount.objects.get(is_default=True)
    admin = people.person_add(actor=None, account=account, iam_user_name="lat-admin")
    approver = people.person_add(
        actor=None,
        account=account,
        iam_user_name="lat-appr",
        email="approver@example.com",
    )
    TOTP.activate(approver.user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    project = projects.project_create(
        actor=admin.user, name="latency", account=account, approvers=[approver.user]
    )
    role_rows = [
        role_services.role_create(actor=admin.user, project=project, os_user=f"ops{j}")
        for j in range(roles)
    ]
    sync.account_baseline_sync(account_id=account.pk)
    requesters = []
    for i in range(approvals + roles):
        person = people.person_add(
            actor=None, account=account, iam_user_name=f"lat{i:04d}"
        )
        sync.iam_user_sync(iam_user_id=person.pk)
        person.refresh_from_db()
        requesters.append(person)
    for j, role in enumerate(role_rows):  # every role exists in AWS
        req = access_requests.access_request_create(
            requester=requesters[j],
            role=role,
            reason="seed",
            duration_hours=8,
            actor=requesters[j].user,
        )
        access_requests.access_request_approve(
            access_request=req, approver=approver.user
        )
        sync.role_sync(role_id=role.pk)
    pending = []
    for i in range(approvals):
        person = requesters[roles + i]
        pending.append(
            access_requests.access_request_create(
                requester=person,
                role=role_rows[i % roles],
                reason="latency",
                duration_hours=8,
                actor=person.user,
            )
        )
    return approver, pending


def bare_calls(endpoint: str, role_name: str, principals: list[str]) -> float:
    """GetRole, ListAttachedRolePolicies, UpdateAssumeRolePolicy: what the
    change needs from AWS, timed without opsgate."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    started = time.perf_counter()
    iam.get_role(RoleName=role_name)
    iam.list_attached_role_policies(RoleName=role_name)
    iam.update_assume_role_policy(
        RoleName=role_name, PolicyDocument=json.dumps(policies.trust_policy(principals))
    )
    return time.perf_counter() - started


class Meter:
    """Time spent in this process's database queries and commits and in AWS
    calls (botocore's requests), while installed. `commits` counts the
    transactions' and the writes made outside one (each its own commit)."""

    def __init__(self) -> None:
        self.sql = self.commit = self.aws = self.cpu = 0.0
        self.queries = self.commits = self.calls = 0

    @staticmethod
    def _cpu() -> float:
        """CPU seconds of this process and of its PostgreSQL backend (the
        part of the time no other load on the machine adds to)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        try:
            with open(f"/proc/{backend}/schedstat") as stat:
                postgres = int(stat.read().split()[0]) / 1e9
        except OSError:
            postgres = 0.0
        return time.process_time() + postgres

    def __enter__(self):
        from botocore.client import BaseClient
        from django.db import connection

        meter = self
        self._cpu_at = self._cpu()
        self._client, self._api = BaseClient, BaseClient._make_api_call

        def api(client, *args, **kwargs):
            started = time.perf_counter()
            try:
                return meter._api(client, *args, **kwargs)
            finally:
                meter.aws += time.perf_counter() - started
                meter.calls += 1

        BaseClient._make_api_call = api
        self._commit_of = connection._commit

        def commit(*args, **kwargs):
            started = time.perf_counter()
            try:
                return meter._commit_of(*args, **kwargs)
            finally:
                meter.commit += time.perf_counter() - started
                meter.commits += 1

        connection._commit = commit
        self._wrapper = connection.execute_wrapper(self._query)
        self._wrapper.__enter__()
        return self

    def _query(self, execute, sql, params, many, context):
        # A write outside a transaction commits by itself (autocommit).
        commits = not context["connection"].in_atomic_block and sql.lstrip()[
            :6
        ].upper() in ("INSERT", "UPDATE", "DELETE")
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.sql += time.perf_counter() - started
            self.queries += 1
            self.commits += commits

    def __exit__(self, *exc) -> None:
        from django.db import connection

        self._wrapper.__exit__(*exc)
        connection._commit = self._commit_of
        self._client._make_api_call = self._api
        self.cpu = self._cpu() - self._cpu_at


def parts(approver, pending: list, client: Client) -> dict:
    """The approval's parts, measured one by one in this process (no HTTP, no
    Celery): the approve POST (the view, its transaction and what it publishes
    after commit; publishing to the worker is switched off meanwhile, so the
    worker leaves these roles alone) and then the role's sync as the worker
    runs it, each with its queries, commits and AWS calls."""
    from provisioning import tasks

    rows = []
    # Nothing is published (the approval's sync, whose lease the POST took or
    # found taken, and the readiness checks after it): the worker must not run
    # these syncs too.
    publish, claim_publish = tasks._publish, tasks.sync_publish
    tasks._publish = lambda task, pk, **options: True
    tasks.sync_publish = lambda model, pk: True
    try:
        for req in pending:
            with Meter() as post:
                started = time.perf_counter()
                answer = client.post(
                    f"/approvals/{req.pk}/decide",
                    {"decision": "approve", "comment": ""},
                    HTTP_HOST="127.0.0.1",
                )
                post_s = time.perf_counter() - started
            assert answer.status_code == 302, answer.status_code
            with Meter() as work:
                started = time.perf_counter()
                tasks.sync_role.apply(args=[req.role_id])
                sync_s = time.perf_counter() - started
            assert AccessRequest.objects.filter(
                pk=req.pk, provisioned_at__isnull=False
            ).exists()
            rows.append((post_s, post, sync_s, work))
    finally:
        tasks._publish, tasks.sync_publish = publish, claim_publish

    def ms(values) -> float:
        return round(1000 * statistics.median(values), 1)

    return {
        "post_ms": ms([r[0] for r in rows]),
        "post_cpu_ms": ms([r[1].cpu for r in rows]),
        "post_sql_ms": ms([r[1].sql for r in rows]),
        "post_commit_ms": ms([r[1].commit for r in rows]),
        "post_queries": rows[0][1].queries,
        "post_commits": rows[0][1].commits,
        "sync_ms": ms([r[2] for r in rows]),
        "sync_cpu_ms": ms([r[3].cpu for r in rows]),
        "sync_aws_ms": ms([r[3].aws for r in rows]),
        "sync_aws_calls": rows[0][3].calls,
        "sync_sql_ms": ms([r[3].sql for r in rows]),
        "sync_commit_ms": ms([r[3].commit for r in rows]),
        "sync_queries": rows[0][3].queries,
        "sync_commits": rows[0][3].commits,
    }


ACTIVE = (
    "SELECT provisioned_at IS NOT NULL FROM accounts_app_accessrequest WHERE id = %s"
)


def _wait_active(pk: int, started: float, timeout: float) -> None:
    """Until the worker has committed the request as active: one statement a
    millisecond, written out (an ORM query costs this process about 0.5 ms of
    CPU to compile, which the 2 cores' worker and moto would wait for)."""
    from django.db import connection

    with connection.cursor() as cursor:
        while True:
            cursor.execute(ACTIVE, [pk])
            if cursor.fetchone()[0]:
                return
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"request {pk} never became active")
            time.sleep(0.001)


def measure(
    base_url: str,
    endpoint: str,
    approvals: int,
    roles: int,
    timeout: float = 30,
    in_process: int = 0,
) -> dict:
    approver, pending = seed(approvals + in_process, roles)
    pending, apart = pending[:approvals], pending[approvals:]
    client = Client()
    client.force_login(approver.user)
    http = requests.Session()
    http.cookies.set("sessionid", client.cookies["sessionid"].value)
    page = http.get(f"{base_url}/approvals/", timeout=30)
    page.raise_for_status()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    latencies, posts, bare = [], [], []
    for req in pending:
        started = time.perf_counter()
        answer = http.post(
            f"{base_url}/approvals/{req.pk}/decide",
            data={"decision": "approve", "comment": "", "csrfmiddlewaretoken": token},
            headers={"Referer": base_url + "/approvals/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.status_code
        posts.append(time.perf_counter() - started)
        _wait_active(req.pk, started, timeout)
        latencies.append(time.perf_counter() - started)
        # The same change sent bare, at once: both figures under the same load
        # (this machine's load moves them both, by up to 2x within a run).
        principals = trust_rules.role_principals(req.role)
        bare.append(bare_calls(endpoint, req.role.role_name, principals))
    # The trust really holds every approved user.
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    for req in pending[-roles:]:
        doc = iam.get_role(RoleName=req.role.role_name)["Role"][
            "AssumeRolePolicyDocument"
        ]
        assert req.requester.arn in doc["Statement"][0]["Principal"]["AWS"]
    result = {"approvals": len(latencies)}
    for name, values in (("opsgate", latencies), ("post", posts), ("bare", bare)):
        result[f"{name}_p50_ms"] = round(1000 * statistics.median(values), 1)
        result[f"{name}_p95_ms"] = round(1000 * percentile(values, 0.95), 1)
    result["ratio_p50"] = round(result["opsgate_p50_ms"] / result["bare_p50_ms"], 1)
    result["ratio_p95"] = round(result["opsgate_p95_ms"] / result["bare_p95_ms"], 1)
    if apart:
        result["parts"] = parts(approver, apart, client)
    return result

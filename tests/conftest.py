"""Shared fixtures: an in-process moto server as the AWS endpoint, and personas.

Personas: alice is the admin, bob approves the payments project, carol and dave
request access, erin approves another project.
"""

import functools
import json
import logging
import os
import urllib.request

import pytest

# Before boto3 or moto build anything: fake credentials, one region, and the
# AWS-managed policies moto only knows when asked.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        # moto applies IAM changes at once: the workers tests start do not
        # wait for propagation (tests of the margin set it themselves).
        "OPSGATE_IAM_PROPAGATION_SECONDS": "0",
        # The readiness check (issue 25) reads AWS and e-mails after every
        # convergence: on only in the tests about it (tests/test_readiness*.py
        # turn it on with the `readiness_on` fixture).
        "OPSGATE_READINESS_CHECKS": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _one_botocore_loader() -> None:
    """Every boto3 session of this process reads botocore's data files
    (endpoints, partitions, service models) through one loader. Tests drop
    opsgate's session between tests (aws.reset_clients: endpoints and
    credentials change), and a new session's own loader parsed the same JSON
    again: most of aws_env's and account's time per test. The files are the
    same for every session; credentials and endpoints are still each
    session's own."""
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.create_loader, "shared", False):
        return
    loaders: dict = {}

    def create_loader(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = botocore.loaders.create_loader(
                search_path_string
            )
        return loaders[search_path_string]

    create_loader.shared = True
    botocore.session.create_loader = create_loader


_one_botocore_loader()


KEPT_BY_FLUSH = {"django_content_type", "auth_permission"}


def _flush_with_delete() -> None:
    """Transactional tests (`transaction=True`, live_server: the browser,
    CLI, schemathesis and process tests) end with Django's flush, which on
    PostgreSQL is one TRUNCATE of every table: new files for each table and
    index, about a second on the test machine under load, against a few
    hundredths for DELETE of the few rows a test leaves. Here a flush that
    keeps the sequences (the test cases' own) is a DELETE of every table in
    the same transaction, foreign keys checked at its commit (DEFERRABLE, as
    Django creates them): the same tables end empty. A flush that resets
    sequences or cascades beyond the tables named keeps TRUNCATE.

    Content types and permissions are kept: the flush's post_migrate signal
    creates them again anyway (1,000 rows and a second a test, most of what
    was left), and no test changes them; post_migrate still runs and adds
    any that are missing, so the flushed database holds the same rows."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    if getattr(truncate, "deletes", False):
        return

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(
                self,
                style,
                tables,
                reset_sequences=reset_sequences,
                allow_cascade=allow_cascade,
            )
        return ["SET CONSTRAINTS ALL DEFERRED;"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(t))};"
            for t in tables
            if t not in KEPT_BY_FLUSH
        ]

    sql_flush.deletes = True
    DatabaseOperations.sql_flush = sql_flush


ACCOUNT_ID = "123456789012"  # moto's default account


# What the boundaries were last deployed as (the endpoint, credentials and
# documents), while nothing could have changed them since: see deploy_boundaries.
_deployed: dict[str, str] = {}


def deploy_boundaries() -> None:
    """The deployment step (`manage.py opsgate_boundaries --apply`): the two
    permissions boundaries opsgate needs and may not create itself.

    Most tests' setup asks for it (the `account` fixture), and apply() is
    seven calls to moto, 35 ms of CPU: it is skipped when the same documents
    were deployed on the same endpoint with the same credentials and, since
    then, this process's moto has neither been reset nor had a managed policy
    created, deleted or versioned (_watch_policy_writes)."""
    from django.conf import settings

    from provisioning import boundaries

    key = json.dumps(
        [
            os.environ.get("AWS_ENDPOINT_URL"),
            os.environ.get("AWS_ACCESS_KEY_ID"),
            settings.OPSGATE["IAM_PATH"],
            boundaries.documents(account_id=ACCOUNT_ID),
        ],
        sort_keys=True,
    )
    if _deployed.get("key") == key:
        return
    boundaries.apply()
    _deployed["key"] = key


def _watch_policy_writes() -> None:
    """Forget the deployed boundaries whenever this process's moto resets or
    writes a managed policy (any account: the boundaries' own writes too)."""
    from moto.core.base_backend import BackendDict
    from moto.iam import models

    if getattr(models.IAMBackend, "_opsgate_watched", False):
        return

    def forgetting(write):
        @functools.wraps(write)
        def wrapper(*args, **kwargs):
            _deployed.clear()
            return write(*args, **kwargs)

        return wrapper

    for name in (
        "create_policy",
        "delete_policy",
        "create_policy_version",
        "delete_policy_version",
        "set_default_policy_version",
    ):
        setattr(models.IAMBackend, name, forgetting(getattr(models.IAMBackend, name)))
    reset = BackendDict.reset
    BackendDict.reset = classmethod(lambda cls: forgetting(reset)())
    models.IAMBackend._opsgate_watched = True


def pytest_configure(config):
    """scripts/test.sh puts the cache on the test Redis (CACHE_URL). The
    database cache (CACHE_URL unset) cannot be cleared by tests without the
    database, and a flush leaves its table alone: use a local cache then, in
    this process and the workers it starts (tests that need a shared cache
    pass their own CACHE_URL).

    Passwords hash with tests.hashers (PBKDF2 at 1,000 iterations); a
    transactional test's flush deletes rows (_flush_with_delete); each test
    process's database is a copy of one migrated template (tests.db_template);
    the live server's threads keep their connections (tests.live_server)."""
    from django.conf import settings

    from tests import db_template, hashers, live_server

    hashers.install(settings)
    _flush_with_delete()
    db_template.install()
    live_server.install()
    if settings.CACHES["default"]["BACKEND"].endswith(".DatabaseCache"):
        os.environ["CACHE_URL"] = "locmem://"
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }


# Under pytest-xdist (`--dist loadfile --no-loadscope-reorder`, scripts/test.sh)
# a file runs whole on one process, in the order collected. These files take
# longest, longest first (measured with --junitxml on the whole suite, 9 s and
# more): they start first, so that the many short files fill in around them
# and both processes end together, instead of one of them running a long file
# alone at the end while the other has finished (xdist's order by number of
# tests left the few-test files, such as schemathesis's one test, for last).
# The rest follow by number of tests. A scheduling hint only: a file missing
# here or renamed still runs.
LONG_FILES = (
    "test_api_schemathesis.py",
    "test_hostile_params.py",
    "test_access_invariants.py",
    "test_browser_portal.py",
    "test_process_faults.py",
    "test_browser.py",
    "test_readiness.py",
    "test_api.py",
    "test_recovery_worker.py",
    "test_broker_restart.py",
    "test_accounts.py",
    "test_readiness_worker.py",
    "test_permissions.py",
    "test_bad_input_forms.py",
    "test_operations.py",
    "test_cli.py",
    "test_recovery.py",
    "test_query_counts.py",
    "test_throttling_process.py",
    "test_bench_smoke.py",
    "test_ending.py",
    "test_moto_run_command.py",
    "test_aws_faults.py",
    "test_offboarding_order.py",
    "test_boundaries.py",
    "test_views.py",
    "test_worker.py",
    "test_browser_newcomer.py",
    "test_newcomer.py",
    "test_reconcile.py",
    "test_browser_accounts.py",
    "test_shared_cache.py",
    "test_access_invariants_found.py",
    "test_browser_rules.py",
    "test_views_portal.py",
    "test_offboarding.py",
    "test_throttling.py",
    "test_approval_rules_pages.py",
    "test_browser_ready.py",
    "test_revocation.py",
    # Short, but leaves a database connection that closes only later: when it
    # ran last the test database could not be dropped (not found yet).
    "test_demo.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    counts: dict[str, int] = {}
    for item in items:
        counts[item.path.name] = counts.get(item.path.name, 0) + 1
    rank = {name: i for i, name in enumerate(LONG_FILES)}

    def key(item):
        name = item.path.name
        return (rank.get(name, len(rank)), -counts[name], str(item.path))

    items.sort(key=key)  # stable: a file's tests keep their order


def clear_cache() -> None:
    """Empty the cache. On Redis only the keys under the cache's prefix go:
    RedisCache.clear() would FLUSHDB, and the tests' broker shares the db."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache) or not cache.key_prefix:
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def managed_policies_once() -> None:
    """moto builds its 1,595 AWS-managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES)
    from JSON for every IAM backend it makes: one per account and partition
    (its access-key lookup visits the six partitions of every account), each
    again when a reset re-initializes them before dropping them. That was most
    of aws_env's second per test. Here the JSON is read once per process and
    the policies are built only in the aws partition, the one opsgate's clients
    reach (OPSGATE_REGION); each backend still gets policies of its own
    (attachment counts are per object), as moto makes them (idempotent)."""
    import json
    from datetime import datetime

    from moto.iam import models
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    if getattr(models.IAMBackend, "_opsgate_policies_once", False):
        return
    data = [
        (
            name,
            d.get("DefaultVersionId"),
            d.get("Path"),
            json.dumps(d.get("Document")),
            datetime.fromisoformat(d["CreateDate"]),
            datetime.fromisoformat(d["UpdateDate"]),
        )
        for name, d in json.loads(aws_managed_policies_data).items()
    ]

    def init_aws_policies(self):
        if self.partition != "aws" or not models.load_iam_aws_managed_policies():
            return []
        return [
            models.AWSManagedPolicy(
                name,
                account_id=self.account_id,
                region=self.region_name,
                default_version_id=version,
                path=path,
                document=document,
                create_date=created,
                update_date=updated,
            )
            for name, version, path, document, created, updated in data
        ]

    models.IAMBackend._init_aws_policies = init_aws_policies
    models.IAMBackend._opsgate_policies_once = True


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    from provisioning import moto_ext

    moto_ext.install()  # IAM user permissions boundaries (moto lacks them)
    managed_policies_once()
    _watch_policy_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    # Clients built for an earlier server (a session before this one in the
    # same process, as mutmut's forked runs have) point at a dead port.
    from provisioning import aws

    aws.reset_clients()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def live_server(django_db_setup, live_server):
    """pytest-django's live server, started after the test database is made,
    so that it stops (its threads closing their connections, tests.live_server)
    before that database is dropped."""
    return live_server


@pytest.fixture
def aws_env(moto_server):
    """A clean moto for each test, and no cached boto3 clients or quotas."""
    from provisioning import aws

    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    # A loaded machine can take a while to empty moto's many backends.
    urllib.request.urlopen(request, timeout=120).read()
    aws.reset_clients()
    clear_cache()
    deploy_boundaries()
    yield moto_server
    aws.reset_clients()


@pytest.fixture
def iam(aws_env):
    import boto3

    return boto3.client("iam", region_name="us-east-1")


@pytest.fixture(autouse=True)
def _iam_propagates_at_once(settings):
    """As OPSGATE_IAM_PROPAGATION_SECONDS=0 above, in this process."""
    settings.OPSGATE = {**settings.OPSGATE, "IAM_PROPAGATION_SECONDS": 0}


@pytest.fixture(autouse=True)
def _readiness_off(settings):
    """As OPSGATE_READINESS_CHECKS=false above, in this process."""
    settings.OPSGATE = {**settings.OPSGATE, "READINESS_CHECKS": False}


@pytest.fixture
def readiness_on(settings):
    settings.OPSGATE = {**settings.OPSGATE, "READINESS_CHECKS": True}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()


@pytest.fixture
def account(moto_server, db):
    """The default account as a row, its boundaries deployed. Tests that look
    at AWS state also ask for aws_env (a reset moto: a tenth of a second
    since managed_policies_once, more on a loaded machine); others do not."""
    from accounts_app.models import AwsAccount

    deploy_boundaries()
    return AwsAccount.objects.create(
        account_id=ACCOUNT_ID, name="default", is_default=True
    )


def _person(account, name, *, staff=False):
    from accounts_app.services import people

    person = people.person_add(
        actor=None,
        account=account,
        iam_user_name=name,
        email=f"{name}@example.com",
        is_staff=staff,
    )
    if staff:
        person.user.is_superuser = True
        person.user.save()
    return person


@pytest.fixture
def alice(account):
    return _person(account, "alice", staff=True)


@pytest.fixture
def bob(account):
    return _person(account, "bob")


@pytest.fixture
def carol(account):
    return _person(account, "carol")


@pytest.fixture
def dave(account):
    return _person(account, "dave")


@pytest.fixture
def erin(account):
    return _person(account, "erin")


@pytest.fixture
def payments(account, alice, bob):
    from accounts_app.services import projects

    return projects.project_create(
        actor=alice.user, name="payments", account=account, approvers=[bob.user]
    )


@pytest.fixture
def deploy_role(payments, alice):
    from accounts_app.services import roles

    return roles.role_create(actor=alice.user, project=payments, os_user="deploy")


@pytest.fixture
def other_project(account, alice, erin):
    from accounts_app.services import projects

    return projects.project_create(
        actor=alice.user, name="Data Platform", account=account, approvers=[erin.user]
    )


@pytest.fixture
def approved(aws_env, carol, bob, deploy_role):
    """carol's approved grant on payments/deploy, the account's baseline and
    her IAM user in AWS (the role is not synced yet)."""
    from accounts_app.services import access_requests
    from provisioning import sync

    sync.account_baseline_sync(account_id=deploy_role.account_id)
    sync.iam_user_sync(iam_user_id=carol.pk)
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="deploy",
        duration_hours=8,
        actor=carol.user,
    )
    return access_requests.access_request_approve(access_request=req, approver=bob.user)


@pytest.fixture
def provisioning_runs(monkeypatch):
    """Work enqueued on commit runs at once in this process (no broker)."""
    from provisioning import tasks

    def run_now(task, pk):
        task.apply(args=[pk])
        return True

    monkeypatch.setattr(tasks, "_publish", run_now)


@pytest.fixture(autouse=True)
def notifications_run(request, monkeypatch):
    """Notifications asked for on commit run at once in this process, through
    the worker's task and its allow-list (no broker), so tests read
    mail.outbox. Tests of the queued path are marked notifications_queued."""
    from provisioning import notify

    monkeypatch.setattr(notify, "_down_until", 0.0)  # no earlier test's outage
    if request.node.get_closest_marker("notifications_queued"):
        return

    def run_now(name, args):
        notify.send_notification.apply(args=[name, args], throw=True)
        return True

    monkeypatch.setattr(notify, "publish", run_now)


@pytest.fixture
def quiet_zero(settings):
    """Reconcile looks at objects however recently they were synced."""
    settings.OPSGATE = {**settings.OPSGATE, "RECONCILE_QUIET_SECONDS": 0}


@pytest.fixture
def worker(aws_env):
    """A running Celery worker process (two pool processes) on a purged queue."""
    from tests.workers import Worker, reset_broker

    reset_broker()
    started = Worker("w1").wait_ready()
    yield started
    started.stop()


class FakeSsm:
    """opsgate's SSM client in tests: moto has no Session Manager sessions.

    Holds the active sessions a test puts in (by owner ARN), answers
    DescribeSessions and TerminateSession like SSM, checks every call's
    parameters against botocore's service model, and records the calls."""

    model = None  # SSM's service model, built once per process

    def __init__(self) -> None:
        import boto3

        if FakeSsm.model is None:
            client = boto3.client("ssm", region_name="us-east-1")
            FakeSsm.model = client.meta.service_model
        self.sessions: dict[str, list[str]] = {}
        self.calls: list[tuple[str, dict]] = []

    def _call(self, operation: str, params: dict) -> None:
        from botocore.validate import validate_parameters

        shape = self.model.operation_model(operation).input_shape
        validate_parameters(params, shape)
        self.calls.append((operation, params))

    def describe_sessions(self, **params):
        self._call("DescribeSessions", params)
        owner = {f["key"]: f["value"] for f in params.get("Filters", [])}.get("Owner")
        ids = self.sessions.get(owner, []) if params.get("State") == "Active" else []
        return {"Sessions": [{"SessionId": i, "Owner": owner} for i in ids]}

    def terminate_session(self, **params):
        self._call("TerminateSession", params)
        for ids in self.sessions.values():
            if params["SessionId"] in ids:
                ids.remove(params["SessionId"])
        return {"SessionId": params["SessionId"]}


class SsmClient:
    """opsgate's SSM client in tests: sessions from the FakeSsm, everything
    else (documents, Run Command) from moto, through a real client built on
    first use (so a test that only ends sessions builds none)."""

    SESSIONS = {"describe_sessions", "terminate_session"}

    def __init__(self, fake: FakeSsm, build) -> None:
        self._fake, self._build, self._real = fake, build, None

    def __getattr__(self, name: str):
        if name in self.SESSIONS:
            return getattr(self._fake, name)
        if self._real is None:
            self._real = self._build()
        return getattr(self._real, name)


@pytest.fixture(autouse=True)
def ssm_sessions(monkeypatch):
    """Every test gets a FakeSsm for SSM sessions (see FakeSsm, SsmClient)."""
    from provisioning import aws

    fake = FakeSsm()
    real = aws.client

    def client(service, account=None, **kwargs):
        if service != "ssm":
            return real(service, account, **kwargs)
        return SsmClient(fake, lambda: real(service, account, **kwargs))

    monkeypatch.setattr(aws, "client", client)
    return fake


# --- Web: logins with and without TOTP ---------------------------------------

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def give_totp(user, secret: str = TOTP_SECRET):
    """Activate allauth TOTP for a login with a known secret."""
    from allauth.mfa.totp.internal.auth import TOTP

    return TOTP.activate(user, secret)


def totp_code(secret: str = TOTP_SECRET) -> str:
    """The current code, from a window with at least 5 seconds left: allauth
    accepts only the current 30-second step (MFA_TOTP_TOLERANCE is 0)."""
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    if 30 - time.time() % 30 < 5:
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


@pytest.fixture
def login(client):
    """login(person): the test client signed in as that person. Admins and
    approvers get TOTP first (the portal requires it of them)."""

    def _login(person, *, totp: bool = True):
        user = getattr(person, "user", person)
        if totp and (user.is_staff or user.approver_of.exists()):
            from allauth.mfa.models import Authenticator

            if not Authenticator.objects.filter(user=user).exists():
                give_totp(user)
        client.force_login(user)
        return client

    return _login

"""The world of the access invariants (issue 20, DESIGN §4.1 and §7.1), shared
by the state machine (tests/test_access_invariants.py) and the counterexamples
it found (tests/test_access_invariants_found.py).

- `World`: an identity account (moto's default, opsgate's own credentials) and
  two workload accounts reached through their provisioner roles; admin alice,
  approver bob, requesters carol and dave; the project payments (bob
  approves, carol and dave may use break-glass) with the role deploy in
  staging and in prod; a trust quota that fits three people.
- `Clock`: opsgate's clock (django.utils.timezone.now and the models' default
  dates) under the test's control.
- `Faults`: AWS failures injected at the boto3 edge of every client opsgate
  builds (IAM in any account, SSM), with real error codes.
- `Worker`: the worker's tasks run in this process to quiescence: the
  lifecycle run (expiry, scheduled starts, reviews) and every object behind.
- `Model`: what the approvals allowed, per person and role, kept by the test
  itself; `violations()` reads moto with plain boto3 and compares.

Nothing here reads AWS through opsgate's code: the checks use their own boto3
clients and parse the documents themselves.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError
from django.apps import apps
from django.conf import settings
from django.utils import timezone

from tests.conftest import ACCOUNT_ID

STAGING_ID, PROD_ID = "111111111111", "222222222222"
PATH = "/opsgate/"
INLINE_POLICY_QUOTA = 10_240  # IAM: a role's inline policies, characters
EXTRA_PRINCIPALS = (
    "arn:aws:iam::333333333333:user/ext/oscar",
    "arn:aws:iam::333333333333:user/ext/peggy",
)
PEOPLE = ("alice", "bob", "carol", "dave")
ROLES = ("staging", "prod")
INF = datetime.max.replace(tzinfo=UTC)


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}{name}"


def minified_size(document: Any) -> int:
    if isinstance(document, str):
        document = json.loads(document)
    return len(json.dumps(document, separators=(",", ":")))


# --- The clock ----------------------------------------------------------------


class Clock:
    """opsgate's now: frozen, moved by the test. `install()` patches
    django.utils.timezone.now (every `timezone.now()` call in opsgate and
    Django's auto_now fields) and the model fields whose default is it."""

    def __init__(self) -> None:
        self.at: datetime | None = None
        self._real = timezone.now
        self._fields: list[Any] = []

    def now(self) -> datetime:
        return self.at if self.at is not None else self._real()

    def install(self) -> None:
        timezone.now = self.now
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.default is self._real:
                    f.default = self.now
                    f.__dict__.pop("_get_default", None)
                    self._fields.append(f)

    def uninstall(self) -> None:
        timezone.now = self._real
        for f in self._fields:
            f.default = self._real
            f.__dict__.pop("_get_default", None)
        self._fields = []

    def advance(self, delta: timedelta) -> None:
        self.at = self.now() + delta


# --- AWS faults at the boto3 edge ---------------------------------------------

_XML = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error>"
    "<RequestId>0</RequestId></ErrorResponse>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args, **kwargs):
        yield self._body


@dataclass(frozen=True)
class Fault:
    """kind: "iam" (code on `op`, any op when None, in `account`, every
    account when None), "ssm" (code on the SSM operation `op`) or "dead"
    (`account` does not answer at all)."""

    kind: str
    code: str = ""
    op: str | None = None
    account: str | None = None

    def __str__(self) -> str:
        where = self.account or "any account"
        if self.kind == "dead":
            return f"{where} stops answering"
        return f"{self.kind} {self.op or 'any call'} -> {self.code} ({where})"


class Faults:
    """Armed faults apply to every client opsgate builds (aws.client is
    wrapped); none are armed outside a faulty step."""

    def __init__(self) -> None:
        self.armed: list[Fault] = []
        self.hits: list[str] = []

    def install(self, monkeypatch) -> None:
        from provisioning import aws

        wrapped = aws.client

        def client(service, account=None, **kwargs):
            built = wrapped(service, account, **kwargs)
            account_id = getattr(account, "account_id", None) or ACCOUNT_ID
            if service == "ssm":
                return _FaultySsm(built, self)
            built.meta.events.register(
                "before-send",
                lambda request, event_name, **kw: self._iam_edge(
                    request, event_name, account_id
                ),
                unique_id=f"invariants-faults-{id(self)}",
            )
            return built

        monkeypatch.setattr(aws, "client", client)

    def _iam_edge(self, request, event_name: str, account_id: str):
        from botocore.awsrequest import AWSResponse

        operation = event_name.rsplit(".", 1)[-1]
        for fault in self.armed:
            if fault.account not in (None, account_id):
                continue
            if fault.kind == "dead":
                self.hits.append(f"dead {account_id} {operation}")
                raise EndpointConnectionError(endpoint_url=request.url)
            if fault.kind == "iam" and fault.op in (None, operation):
                self.hits.append(f"{fault.code} {account_id} {operation}")
                body = _XML.format(code=fault.code).encode()
                status = 400
                return AWSResponse(
                    request.url, status, {"Content-Type": "text/xml"}, _Raw(body)
                )
        return None

    def ssm_raise(self, operation: str) -> None:
        for fault in self.armed:
            if fault.kind == "ssm" and fault.op in (None, operation):
                self.hits.append(f"{fault.code} ssm {operation}")
                raise ClientError(
                    {"Error": {"Code": fault.code, "Message": "injected"}}, operation
                )


class _FaultySsm:
    def __init__(self, inner, faults: Faults) -> None:
        self.inner, self.faults = inner, faults

    def describe_sessions(self, **params):
        self.faults.ssm_raise("DescribeSessions")
        return self.inner.describe_sessions(**params)

    def terminate_session(self, **params):
        self.faults.ssm_raise("TerminateSession")
        return self.inner.terminate_session(**params)


# --- Reading moto independently -----------------------------------------------


class Reader:
    """Plain boto3 clients, one per account (the workload accounts through an
    sts:AssumeRole of their provisioner role, as moto needs)."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}

    def iam(self, account_id: str):
        if account_id not in self.clients:
            if account_id == ACCOUNT_ID:
                self.clients[account_id] = boto3.client("iam", region_name="us-east-1")
            else:
                creds = boto3.client("sts", region_name="us-east-1").assume_role(
                    RoleArn=f"arn:aws:iam::{account_id}:role/invariants-reader",
                    RoleSessionName="invariants",
                )["Credentials"]
                self.clients[account_id] = boto3.client(
                    "iam",
                    region_name="us-east-1",
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                )
        return self.clients[account_id]

    def details(self, account_id: str, kind: str) -> list[dict]:
        """One GetAccountAuthorizationDetails read ("User" or "Role")."""
        client = self.iam(account_id)
        found = []
        paginator = client.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=[kind]):
            found += page.get(f"{kind}DetailList", [])
        return [d for d in found if d.get("Path", "").startswith(PATH)]

    def roles(self, account_id: str) -> dict[str, dict]:
        """Every role under opsgate's path: name -> {id, trust, inline}."""
        return {
            role["RoleName"]: {
                "id": role["RoleId"],
                "trust": _document(role["AssumeRolePolicyDocument"]),
                "inline": {
                    p["PolicyName"]: _document(p["PolicyDocument"])
                    for p in role.get("RolePolicyList", [])
                },
                "attached": [
                    p["PolicyArn"] for p in role.get("AttachedManagedPolicies", [])
                ],
            }
            for role in self.details(account_id, "Role")
        }

    def users(self, account_id: str) -> dict[str, dict]:
        """IAM users under opsgate's path: name -> their id and groups (the
        machine gives nobody keys or a console password: the operators group
        is what makes a user usable). Two calls: ListUsers, GetGroup."""
        client = self.iam(account_id)
        users = client.list_users(PathPrefix=PATH)["Users"]
        try:
            group = settings.OPSGATE["GROUP_NAME"]
            members = {
                u["UserName"] for u in client.get_group(GroupName=group)["Users"]
            }
        except ClientError:
            group, members = "", set()
        return {
            u["UserName"]: {
                "id": u["UserId"],
                "groups": [group] if u["UserName"] in members else [],
            }
            for u in users
        }

    def clean(self, account_id: str) -> None:
        """Remove opsgate's roles and users (not the baseline) between examples."""
        client = self.iam(account_id)
        for name, role in self.roles(account_id).items():
            for policy in role["inline"]:
                client.delete_role_policy(RoleName=name, PolicyName=policy)
            for arn in role["attached"]:
                client.detach_role_policy(RoleName=name, PolicyArn=arn)
            client.delete_role(RoleName=name)
        for name, user in self.users(account_id).items():
            for group in user["groups"]:
                client.remove_user_from_group(GroupName=group, UserName=name)
            for k in client.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                client.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
            try:
                client.delete_login_profile(UserName=name)
            except ClientError:
                pass
            client.delete_user(UserName=name)


def _document(document: Any) -> dict:
    if isinstance(document, str):
        from urllib.parse import unquote

        document = json.loads(unquote(document))
    return document


def trust_principals(trust: dict) -> set[str]:
    """The AWS principals the trust's Allow statements name."""
    found: set[str] = set()
    for statement in trust.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principals = statement.get("Principal", {}).get("AWS", [])
        found |= {principals} if isinstance(principals, str) else set(principals)
    return found


def deny_cutoffs(inline: dict) -> dict[str, datetime]:
    """aws:userid pattern -> the latest TokenIssueTime cutoff the inline
    policies deny before (statements that deny everything)."""
    cutoffs: dict[str, datetime] = {}
    for document in inline.values():
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Deny":
                continue
            condition = statement.get("Condition", {})
            # No aws:userid condition: every session of the role (a coarse
            # fallback of the deny, DESIGN §4.1).
            users = condition.get("StringLike", {}).get("aws:userid", "*")
            before = condition.get("DateLessThan", {}).get("aws:TokenIssueTime")
            if not before or statement.get("Action") not in ("*", ["*"]):
                continue
            at = datetime.strptime(before, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            for user in [users] if isinstance(users, str) else users:
                cutoffs[user] = max(at, cutoffs.get(user, at))
    return cutoffs


def denied(cutoffs: dict[str, datetime], role_id: str, name: str) -> datetime | None:
    """The cutoff before which sessions `<role_id>:<name>` are denied (exact
    name or a pattern covering every session of the role)."""
    best = None
    for pattern, at in cutoffs.items():
        if pattern in (f"{role_id}:{name}", f"{role_id}:*", "*"):
            best = at if best is None else max(best, at)
    return best


# --- Intervals ----------------------------------------------------------------


def union(
    intervals: list[tuple[datetime, datetime]],
) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def covered(window: tuple[datetime, datetime], allowed, slack=timedelta(seconds=1)):
    start, end = window
    if end <= start:
        return True
    return any(s - slack <= start and end <= e + slack for s, e in union(allowed))


# --- The model ----------------------------------------------------------------


@dataclass
class Session:
    id: str
    owner: str
    name: str
    role: str
    started: datetime


@dataclass
class Model:
    """What the approvals allowed and what the test saw, kept apart from
    opsgate's database."""

    allowed: dict[tuple[str, str], list[tuple[datetime, datetime]]] = field(
        default_factory=dict
    )
    # (name, role) -> [(when, role id)] the name was seen in the role's trust.
    seen: dict[tuple[str, str], list[tuple[datetime, str]]] = field(
        default_factory=dict
    )
    # Explicit endings the intervals do not show (removed principals):
    # (name, role, at).
    endings: list[tuple[str, str, datetime]] = field(default_factory=list)
    rule_creators: dict[int, int | None] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    active: dict[str, bool] = field(default_factory=dict)

    def allow(self, name: str, role: str, start: datetime, end: datetime) -> None:
        self.allowed.setdefault((name, role), []).append((start, end))

    def truncate(self, name: str, role: str | None, at: datetime) -> None:
        for (n, r), intervals in self.allowed.items():
            if n == name and role in (None, r):
                self.allowed[(n, r)] = [(s, min(e, at)) for s, e in intervals]

    def allowed_now(self, name: str, role: str, now: datetime) -> bool:
        return any(s <= now < e for s, e in self.allowed.get((name, role), []))

    def all_endings(self, now: datetime) -> list[tuple[str, str, datetime]]:
        """(name, role, at) of every end of access up to now: the ends of the
        allowed windows and the explicit ones."""
        found = [e for e in self.endings if e[2] <= now]
        for (name, role), intervals in self.allowed.items():
            for start, end in union(intervals):
                if end <= now and any(
                    start <= t < end for t, _ in self.seen.get((name, role), [])
                ):
                    found.append((name, role, end))
        return found


session_ids = itertools.count(1)


def max_session() -> timedelta:
    return timedelta(seconds=settings.OPSGATE["MAX_SESSION_DURATION"])


# --- The worker, in this process ----------------------------------------------


def worker_pass() -> bool:
    """One try of every object behind (as the sweep would send them; errors
    are recorded by opsgate and left for the next pass). True when something
    was tried."""
    from accounts_app.models import AwsAccount, IamUser, OperationRole
    from provisioning import sync
    from provisioning.aws import AwsError

    tried = False
    for model, function, key in (
        (AwsAccount, sync.account_baseline_sync, "account_id"),
        (IamUser, sync.iam_user_sync, "iam_user_id"),
        (OperationRole, sync.role_sync, "role_id"),
    ):
        for pk in (
            model.behind().filter(error_is_permanent=False).values_list("pk", flat=True)
        ):
            tried = True
            try:
                function(**{key: pk})
            except AwsError:
                pass
    return tried


def run_worker(rounds: int = 6) -> None:
    for _ in range(rounds):
        if not worker_pass():
            return


def settle(admin_user) -> None:
    """The fault-free aftermath: the periodic lifecycle run, the worker to
    quiescence, the admin's "retry" on whatever stopped at a permanent error
    (its cause, the injected fault, is gone), the worker again."""
    from accounts_app.models import AwsAccount, IamUser, OperationRole
    from accounts_app.services import lifecycle
    from accounts_app.sync_requests import sync_retry

    lifecycle.lifecycle_run()
    run_worker()
    for model in (AwsAccount, IamUser, OperationRole):
        for obj in model.behind().filter(error_is_permanent=True):
            sync_retry(obj=obj, actor=admin_user)
    run_worker()


# --- The world ----------------------------------------------------------------


class World:
    """The rows of one example (inside the example's savepoint) and moto's
    accounts cleaned of opsgate's roles and users."""

    def __init__(self, reader: Reader, *, baseline_ready: bool = False) -> None:
        """`baseline_ready`: an earlier example converged the accounts'
        baselines in moto (kept between examples): the rows say so at once."""
        from accounts_app.models import AwsAccount
        from accounts_app.services import accounts, break_glass, people, projects, roles
        from provisioning import baseline, policies

        self.reader = reader
        for account_id in (ACCOUNT_ID, STAGING_ID, PROD_ID):
            reader.clean(account_id)
        self.identity = AwsAccount.objects.create(
            account_id=ACCOUNT_ID, name="people", is_default=True, holds_roles=False
        )
        self.accounts = {"people": self.identity}
        for name, account_id in (("staging", STAGING_ID), ("prod", PROD_ID)):
            self.accounts[name] = accounts.account_add(
                actor=None,
                account_id=account_id,
                name=name,
                holds_people=False,
                identity_account_id=ACCOUNT_ID,
                assume_role_arn=f"arn:aws:iam::{account_id}:role/opsgate-provisioner",
                external_id=f"opsgate-{name}",
            )
        if baseline_ready:
            for account in self.accounts.values():
                AwsAccount.objects.filter(pk=account.pk).update(
                    baseline_fingerprint=baseline.baseline_fingerprint(account),
                    applied_version=account.desired_version,
                )
        self.people = {}
        for name in PEOPLE:
            self.people[name] = people.person_add(
                actor=None,
                account=self.identity,
                iam_user_name=name,
                email=f"{name}@example.com",
                is_staff=name == "alice",
            )
        admin = self.people["alice"].user
        admin.is_superuser = True
        admin.save()
        self.admin = admin
        self.project = projects.project_create(
            actor=admin,
            name="payments",
            account=self.accounts["staging"],
            approvers=[self.people["bob"].user],
            allowed_durations=[1, 8, 24],
        )
        self.roles = {
            "staging": roles.role_create(
                actor=admin, project=self.project, os_user="deploy"
            ),
            "prod": roles.role_create(
                actor=admin,
                project=self.project,
                os_user="deploy",
                account=self.accounts["prod"],
            ),
        }
        break_glass.break_glass_set(
            actor=admin,
            project=self.project,
            allow=True,
            people=[self.people["carol"].user, self.people["dave"].user],
            hours=1,
            daily_cap=2,
            review_hours=24,
        )
        settle(admin)
        # A trust quota that fits two of the four people (or one and a
        # cross-account user): the size checks matter.
        quota = policies.trust_policy_size([user_arn(n) for n in ("alice", "carol")])
        AwsAccount.objects.filter(pk__in=[a.pk for a in self.accounts.values()]).update(
            trust_policy_quota=quota
        )

    def person(self, name: str):
        """The person's current record (the newest: offboarded and added again
        is a new record)."""
        from accounts_app.models import IamUser

        return IamUser.objects.filter(name=name).order_by("-pk").first()

    def role(self, key: str):
        from accounts_app.models import OperationRole

        return OperationRole.objects.select_related("account", "project").get(
            pk=self.roles[key].pk
        )

    def role_account_id(self, key: str) -> str:
        return {"staging": STAGING_ID, "prod": PROD_ID}[key]

    def role_key(self, role) -> str:
        return next(k for k, r in self.roles.items() if r.pk == role.pk)


# --- The invariants -----------------------------------------------------------


def _holders(role, now) -> set[str]:
    """Names of active people whose grant on `role` contains now (the
    database, queried here, not through opsgate's helpers)."""
    from django.db.models import Q

    from accounts_app.models import AccessRequest

    return set(
        AccessRequest.objects.filter(
            role=role, status="approved", requester__state="active"
        )
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("requester__name", flat=True)
    )


def _name_of(principal: str) -> str:
    return principal.rsplit("/", 1)[-1]


class Observed:
    """One read of moto: the roles of both workload accounts and the users of
    the identity account."""

    def __init__(self, world: World) -> None:
        self.roles = {
            key: world.reader.roles(world.role_account_id(key)) for key in ROLES
        }
        self.users = world.reader.users(ACCOUNT_ID)
        self.rows = {key: world.role(key) for key in ROLES}

    def role(self, world: World, key: str) -> dict | None:
        return self.roles[key].get(self.rows[key].role_name)


def observe(world: World, model: Model, now: datetime) -> Observed:
    seen = Observed(world)
    for key in ROLES:
        role = seen.role(world, key)
        if role is None:
            continue
        for principal in trust_principals(role["trust"]):
            model.seen.setdefault((_name_of(principal), key), []).append(
                (now, role["id"])
            )
    return seen


def _check_c(world, model, seen, now, *, before=None) -> list[str]:
    """(c) sessions issued before an ending stay denied until the session
    duration has passed, even after a re-grant."""
    problems = []
    window = max_session()
    for name, key, ended in model.all_endings(now):
        if not now < ended + window or (before is not None and ended >= before):
            continue
        sightings = [rid for t, rid in model.seen.get((name, key), []) if t <= ended]
        if not sightings:
            continue
        role = seen.role(world, key)
        if role is None or role["id"] != sightings[-1]:
            continue  # the role was deleted: its sessions lost everything
        if not role["attached"] and not role["inline"]:
            # Closed for deletion (DESIGN §4.1: trust of nobody, policies
            # detached, the deny deleted because DeleteRole needs it gone):
            # its sessions hold no permission to deny.
            continue
        cutoff = denied(deny_cutoffs(role["inline"]), role["id"], name)
        if cutoff is None or cutoff < ended:
            problems.append(
                f"(c) {key}: sessions of {name} issued before their access ended "
                f"at {ended:%H:%M:%S} are not denied (deny cutoff: {cutoff})"
            )
    return problems


def _check_d(world, seen) -> list[str]:
    problems = []
    for key in ROLES:
        role = seen.role(world, key)
        if role is None:
            continue
        quota = seen.rows[key].account.trust_quota
        size = minified_size(role["trust"])
        if size > quota:
            problems.append(
                f"(d) {key}: trust policy {size} > quota {quota} characters"
            )
        inline = sum(minified_size(d) for d in role["inline"].values())
        if inline > INLINE_POLICY_QUOTA:
            problems.append(
                f"(d) {key}: inline policies {inline} > {INLINE_POLICY_QUOTA} chars"
            )
    return problems


def settled_violations(world: World, model: Model, ssm, now: datetime) -> list[str]:
    """Every invariant, once the worker has settled without faults."""
    from django.db.models import F

    from accounts_app.models import AccessRequest, Approval, IamUser

    seen = observe(world, model, now)
    problems = []
    # (a) in the trust iff a grant contains now and the person is active.
    for key in ROLES:
        role_row = seen.rows[key]
        role = seen.role(world, key)
        actual = trust_principals(role["trust"]) if role else set()
        expected = {user_arn(n) for n in _holders(role_row, now)} | set(
            role_row.extra_principal_arns or []
        )
        for principal in sorted(actual - expected):
            problems.append(f"(a) {key}: {principal} is in the trust without a grant")
        for principal in sorted(expected - actual):
            problems.append(f"(a) {key}: {principal} holds a grant, not in the trust")
        for name in seen.roles[key]:
            if name != role_row.role_name:
                problems.append(
                    f"(a) {key}: role {name} in AWS unknown to the database"
                )
    active = set(IamUser.objects.filter(state="active").values_list("name", flat=True))
    for name, user in seen.users.items():
        usable = user["groups"]
        if usable and name not in active:
            problems.append(f"(a) identity: offboarded {name} still has {user}")
    for person in IamUser.objects.filter(state="active"):
        if person.applied_version >= person.desired_version and (
            person.name not in seen.users
            or (person.unique_id and seen.users[person.name]["id"] != person.unique_id)
        ):
            problems.append(
                f"(a) identity: {person.name} is active and in sync in the database "
                "but its IAM user is missing or another one"
            )
    # (b) no window exceeds what its approval allowed.
    grants = AccessRequest.objects.filter(
        decided_at__isnull=False, status__in=["approved", "expired", "revoked"]
    ).select_related("requester", "role")
    for g in grants:
        key = world.role_key(g.role)
        start = g.starts_at or g.decided_at
        end = min(g.expires_at or INF, g.ended_at or INF)
        if not covered((start, end), model.allowed.get((g.requester.name, key), [])):
            kind = (
                "auto"
                if g.auto_approved
                else "break-glass"
                if g.break_glass
                else "approved"
            )
            allowed = [
                (f"{s:%m-%d %H:%M}", "inf" if e == INF else f"{e:%m-%d %H:%M}")
                for s, e in union(model.allowed.get((g.requester.name, key), []))
            ]
            problems.append(
                f"(b) {key}: grant #{g.pk} of {g.requester.name} "
                f"({kind}, "
                f"{g.duration_hours} h) runs {start:%m-%d %H:%M}..{end:%m-%d %H:%M}, "
                f"approved: {allowed}"
            )
    # (e) nobody approved their own request by any path.
    own = set(
        Approval.objects.filter(
            approver_id=F("access_request__requester__user_id")
        ).values_list("access_request_id", flat=True)
    )
    for g in grants:
        user_id = g.requester.user_id
        if g.decided_by_id == user_id:
            problems.append(f"(e) grant #{g.pk}: {g.requester.name} decided it")
        if g.pk in own:
            problems.append(f"(e) grant #{g.pk}: {g.requester.name} approved it")
        if g.auto_approved and model.rule_creators.get(g.auto_rule_id) == user_id:
            problems.append(
                f"(e) grant #{g.pk}: auto-approved by a rule {g.requester.name} made "
                "listing themself"
            )
    problems += _check_c(world, model, seen, now)
    # (c) and SSM: a session started before an ending does not survive it.
    endings = model.all_endings(now)
    for s in model.sessions:
        if s.id not in ssm.sessions.get(s.owner, []):
            continue
        for name, key, ended in endings:
            if (name, key) == (s.name, s.role) and s.started < ended <= now:
                problems.append(
                    f"(c) {key}: SSM session {s.id} of {name} (started "
                    f"{s.started:%H:%M:%S}) survives the end of access at "
                    f"{ended:%H:%M:%S}"
                )
                break
    problems += _check_d(world, seen)
    return problems


def faulty_violations(
    world: World, model: Model, now: datetime, *, fault: Fault, step_started: datetime
) -> list[str]:
    """(f) whatever failed, AWS is never more open than the database; and what
    earlier steps closed stays closed ((c) for earlier endings; (d))."""
    from accounts_app.models import IamUser, OperationRole

    seen = observe(world, model, now)
    problems = []
    ssm_only = fault.kind == "ssm"
    identity_healthy = ssm_only or fault.account in (STAGING_ID, PROD_ID)
    for key in ROLES:
        role_row = seen.rows[key]
        role = seen.role(world, key)
        if role is None:
            continue
        behind = OperationRole.behind().filter(pk=role_row.pk).exists()
        holders = {user_arn(n) for n in _holders(role_row, now)}
        extra = set(role_row.extra_principal_arns or [])
        for principal in sorted(trust_principals(role["trust"]) - holders - extra):
            if ssm_only:
                problems.append(
                    f"(f) {key}: an SSM failure keeps {principal} in the trust "
                    "although the database ended their access"
                )
            elif not behind:
                problems.append(
                    f"(f) {key}: {principal} is in the trust, the database has no "
                    "grant and no pending change"
                )
    if identity_healthy:
        active = set(
            IamUser.objects.filter(state="active").values_list("name", flat=True)
        )
        for name, user in seen.users.items():
            if user["groups"] and name not in active:
                problems.append(
                    f"(f) identity: offboarded {name} is still usable in the identity "
                    f"account although only {fault} failed"
                )
    # An SSM failure comes after the deny and the trust (DESIGN §4.1): this
    # step's endings are denied already; other faults may hold them up.
    problems += _check_c(
        world, model, seen, now, before=None if ssm_only else step_started
    )
    problems += _check_d(world, seen)
    return problems

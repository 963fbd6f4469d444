"""Converging an operation role in AWS, ending access first (DESIGN §4.1).

A grant that ended (revoke, expiry, review, offboarding) or a cross-account
user removed from a role is an "ending", closed in AWS by three steps in
this order, each recorded on its own when done (AccessRequest.deny_cutoff,
deny_written_at, trust_removed_at, sessions_ended_at; the same keys in
OperationRole.ended_principals):
  1. the role's inline deny covers the person's sessions issued before the
     cutoff (the trust write + IAM_PROPAGATION_SECONDS);
  2. the trust no longer lists them (or, for the last one, trusts nobody and
     the role is deleted);
  3. their SSM sessions are terminated, and once more after the propagation
     margin (shells started while IAM still honoured the old trust):
     provisioning.sync.sessions.
A step's failure never undoes an earlier one (a savepoint per step); the
role stays behind its desired version until every step is done, so the
sweep and the task's retries resume the missing ones.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from accounts_app import notifications, trust
from accounts_app.models import AccessRequest, IamUser, OperationRole
from accounts_app.services import readiness
from provisioning import aws, baseline, iam, policies, recovery
from provisioning.aws import AwsError, PermanentError
from provisioning.sync.outcomes import _conf, _iso, _margin, _when, _window
from provisioning.sync.sessions import _principals_mark, _ssm_step

# The deny is written just before the trust: its cutoff covers a trust write
# up to this much later; a later one moves the cutoff and rewrites the deny.
TRUST_WRITE_ALLOWANCE = timedelta(seconds=10)


# What the steps record on the role; reloaded when a step rolls back.
_STEP_FIELDS = [
    "arn",
    "unique_id",
    "exists_in_aws",
    "missing_since",
    "revoked_sessions_until",
    "applied_extra_principal_arns",
    "ended_principals",
]


def _step(failures: list[AwsError], function, role: OperationRole, *args: Any) -> bool:
    """Run one ending step in a savepoint: its failure rolls back only its own
    records, and is collected for the caller to raise after the commit."""
    try:
        with transaction.atomic():
            function(role, *args)
    except AwsError as exc:
        role.refresh_from_db(fields=_STEP_FIELDS)
        failures.append(exc)
        return False
    return True


def _role_converge(
    role: OperationRole,
    grants: list[AccessRequest],
    users: list[IamUser],
    *,
    read_at: datetime | None = None,
) -> AwsError | None:
    """Make the role match the database, ending access first: deny, trust,
    SSM (and, when nobody is left, delete the role last). `read_at`: when
    `grants` were read as the active ones. Returns the failure to raise once
    the steps that succeeded are committed."""
    now = timezone.now()
    client = aws.client("iam", role.account)
    principals = trust.principal_arns(role, users)
    ending, recorded = _endings_open(role, grants, users, now=now, as_of=read_at or now)
    existing = iam.role_get(client, name=role.role_name, path=_conf("IAM_PATH"))
    failures: list[AwsError] = []
    # Nothing ended and no deny in force: the deny step has nothing to write
    # (nor a savepoint to take).
    if recorded or role.ended_principals or role.revoked_sessions_until:
        _step(failures, _deny_step, role, client, existing, now, recorded)
    # Without an ending recorded or a removed cross-account user, the SSM step
    # has no session to end.
    sessions = bool(recorded or role.ended_principals)
    if principals:
        args = (client, principals, grants, users, existing, ending)
        _step(failures, _trust_step, role, *args)
        if sessions:
            _step(failures, _ssm_step, role)
    else:
        closed = _step(failures, _close_step, role, client, existing)
        if sessions:
            _step(failures, _ssm_step, role)
        if closed:
            _step(failures, _delete_step, role, client, existing)
    permanent = [f for f in failures if isinstance(f, PermanentError)]
    return (permanent or failures or [None])[0]


def _endings_open(
    role: OperationRole,
    grants: list[AccessRequest],
    users: list[IamUser],
    *,
    now: datetime,
    as_of: datetime | None = None,
) -> tuple[bool, list[tuple]]:
    """Find what ended since the last sync. A grant replaced by an extension
    (the person's current grant was approved no later than the old one ended)
    is no ending: the person stays in the trust. A removed cross-account user
    is one. Every ending whose trust is not rewritten yet gets the cutoff
    the deny written now must cover (it moves with each try). Returns whether
    a grant's ending waits for the trust rewrite, and _endings_recorded as it
    stands after this (both from one read). `as_of`: the moment `grants`
    were read as the active ones; what ended by then is an ending (a grant
    that expired since is still one of `grants`, never its own replacement:
    the person would leave the trust with no deny nor session ended)."""
    held_since: dict[str, Any] = {}
    for g in grants:
        if g.requester in users:
            name = g.requester.name
            held_since[name] = min(
                filter(None, [g.decided_at, held_since.get(name)]), default=None
            )
    fresh_q = AccessRequest.ended_q(as_of or now) & Q(trust_removed_at__isnull=True)
    rows = (
        AccessRequest.objects.filter(role=role)
        .filter(fresh_q | _recorded_q(now))
        .order_by()
        .annotate(fresh=ExpressionWrapper(fresh_q, output_field=BooleanField()))
        .values_list(
            "pk",
            "requester__name",
            "deny_cutoff",
            "deny_written_at",
            "ended_at",
            "fresh",
        )
    )
    cutoff = now + _margin() + TRUST_WRITE_ALLOWANCE
    recorded, waiting = [], []
    for pk, name, deny_cutoff, written, ended_at, fresh in rows:
        if not fresh:
            recorded.append((pk, name, deny_cutoff, written))
        elif name in held_since and (
            held_since[name] is None or ended_at is None or held_since[name] <= ended_at
        ):
            AccessRequest.objects.filter(pk=pk).update(
                deny_cutoff=None,
                deny_written_at=now,
                trust_removed_at=now,
                sessions_ended_at=now,
            )
        else:
            waiting.append(pk)
            recorded.append((pk, name, cutoff, written))
    # None open: no row to update (only this sync, under the role lock, sets cutoffs).
    if waiting:
        AccessRequest.objects.filter(pk__in=waiting).update(deny_cutoff=cutoff)
    applied = role.applied_extra_principal_arns
    removed = set(applied or []) - set(role.extra_principal_arns or [])
    entries = list(role.ended_principals or [])
    open_arns = {e["arn"] for e in entries if not e.get("trust")}
    for arn in sorted(removed - open_arns):
        name = arn.rsplit("/", 1)[-1]
        entries.append(
            {"arn": arn, "name": name, "cutoff": None, "deny": None, "trust": None}
        )
    for entry in entries:
        if not entry.get("trust"):
            entry["cutoff"] = _iso(cutoff)
    if entries or role.ended_principals:  # else nothing to write
        role.ended_principals = entries
        role.save(update_fields=["ended_principals"])
    return bool(waiting), recorded


def _recorded_q(now: datetime) -> Q:
    return Q(deny_cutoff__isnull=False) & (
        Q(deny_cutoff__gt=now - _window())
        | Q(deny_written_at__isnull=True)
        | Q(sessions_ended_at__isnull=True)
    )


def _endings_recorded(role: OperationRole, now: datetime) -> list[tuple]:
    """(id, name, cutoff, deny written at) of the role's endings whose deny
    may still be in force or whose steps are not all recorded. An ending has
    its cutoff from its first sync on (migration 0007 gave the older ones
    theirs), so none here leaves no grant for the deny or the SSM step."""
    rows = AccessRequest.objects.filter(_recorded_q(now), role=role)
    return list(
        rows.values_list("pk", "requester__name", "deny_cutoff", "deny_written_at")
    )


def _deny_entries(role: OperationRole, recorded, now: datetime) -> dict:
    """Who the deny names, with the latest cutoff each: every ending whose
    sessions may still be valid, whether or not the person holds the role
    again (their sessions issued before the cutoff stay denied)."""
    since, entries = now - _window(), {}
    named = [(name, cutoff) for _, name, cutoff, _ in recorded]
    named += [(e["name"], _when(e.get("cutoff"))) for e in role.ended_principals or []]
    for name, cutoff in named:
        if cutoff and cutoff > since:
            entries[name] = max(cutoff, entries.get(name, cutoff))
    return entries


def _deny_write(
    role: OperationRole, client: Any, role_id: str, now: datetime, recorded
) -> None:
    entries = _deny_entries(role, recorded, now)
    if entries or role.revoked_sessions_until is not None:
        iam.ensure_role_inline_policy(
            client,
            role=role.role_name,
            name=revoked_sessions_policy_name(),
            document=policies.revoked_sessions_policy(role_id=role_id, revoked=entries),
        )
    until = min(entries.values()) + _window() if entries else None
    if until != role.revoked_sessions_until:  # read under the row lock
        role.revoked_sessions_until = until
        role.save(update_fields=["revoked_sessions_until"])


def _deny_step(
    role: OperationRole, client: Any, existing: dict | None, now: datetime, recorded
) -> None:
    """Step 1. A role missing in AWS has no session to deny. `recorded`:
    _endings_recorded, read after _endings_open set this run's cutoffs."""
    if existing is not None:
        role_id = existing.get("RoleId") or role.unique_id
        _deny_write(role, client, role_id, now, recorded)
    unwritten = [pk for pk, _, _, written in recorded if written is None]
    if unwritten:
        AccessRequest.objects.filter(pk__in=unwritten).update(deny_written_at=now)
    _principals_mark(role, "deny", now, lambda e: bool(e.get("cutoff")))


def _trust_done(role: OperationRole, at: datetime, grants_ending: bool = True) -> bool:
    """Record step 2 at `at`; a cutoff that no longer covers the propagation
    after `at` moves. Returns True when one moved (the deny must follow).
    `grants_ending`: False when _endings_open found no grant's ending open."""
    covered = at + _margin()
    moved = False
    if grants_ending:
        pending = AccessRequest.objects.filter(
            role=role, deny_cutoff__isnull=False, trust_removed_at__isnull=True
        )
        moved = pending.filter(deny_cutoff__lt=covered).update(deny_cutoff=covered) > 0
        pending.update(trust_removed_at=at)
    for entry in role.ended_principals or []:
        if entry.get("cutoff") and not entry.get("trust"):
            if _when(entry["cutoff"]) < covered:
                entry["cutoff"], moved = _iso(covered), True
            entry["trust"] = _iso(at)
    if role.ended_principals:  # else nothing to write
        role.save(update_fields=["ended_principals"])
    return moved


def role_description(role: OperationRole) -> str:
    # Descriptions are plain text to IAM but restricted in characters; the
    # project name (any script) reaches AWS only as a tag value.
    return f"opsgate operation role, run as {role.os_user}"


_TRUST_FIELDS = ["arn", "unique_id", "exists_in_aws", "missing_since"]
_TRUST_FIELDS += ["applied_extra_principal_arns"]  # what the trust step records


def _trust_step(
    role: OperationRole,
    client: Any,
    principals: list[str],
    grants: list[AccessRequest],
    users: list[IamUser],
    existing: dict | None,
    grants_ending: bool = True,
) -> None:
    """Step 2 with principals left: the role's whole trust (the role created
    when missing), then the deny once more if the role is new or a cutoff
    moved."""
    recorded = [getattr(role, f) for f in _TRUST_FIELDS]  # as the row holds them
    result = iam.ensure_role(
        client,
        name=role.role_name,
        path=_conf("IAM_PATH"),
        trust=policies.trust_policy(principals),
        tags=policies.role_tags(project=role.project.name, os_user=role.os_user),
        max_session_duration=_conf("MAX_SESSION_DURATION"),
        policy_arns=baseline.role_policy_arns(role.account),
        description=role_description(role),
        boundary_arn=baseline.boundary_arn(role.account),
        current=existing,
    )
    written = timezone.now()
    recovery.note_recreated(role, result.get("RoleId", ""))
    role.unique_id = result.get("RoleId", "") or role.unique_id
    if _trust_done(role, written, grants_ending) or existing is None:
        # The cutoffs as they are now (_trust_done may have moved them).
        recorded = _endings_recorded(role, written)
        _deny_write(role, client, role.unique_id, written, recorded)
    role.arn, role.exists_in_aws, role.missing_since = result["Arn"], True, None
    role.applied_extra_principal_arns = sorted(role.extra_principal_arns or [])
    if [getattr(role, f) for f in _TRUST_FIELDS] != recorded:
        role.save(update_fields=_TRUST_FIELDS)
    # The grants read under the role's lock: only this sync provisions them.
    active_ids = [
        g.pk for g in grants if g.requester in users and g.provisioned_at is None
    ]
    if active_ids:
        notifications.on_commit(notifications.grants_active, active_ids)
        # Issue 25: then read back what AWS holds for each (Ready / Not ready).
        readiness.grants_provisioned(grant_ids=active_ids, at=timezone.now())


def _close_step(role: OperationRole, client: Any, existing: dict | None) -> None:
    """Step 2 for the last principal: the trust lets nobody in."""
    if existing is not None:
        iam.role_close(
            client, name=role.role_name, path=_conf("IAM_PATH"), current=existing
        )
    _trust_done(role, timezone.now())
    role.applied_extra_principal_arns = sorted(role.extra_principal_arns or [])
    role.save(update_fields=["applied_extra_principal_arns"])


def _delete_step(role: OperationRole, client: Any, existing: dict | None) -> None:
    """Last, once the trust is closed: a deleted role takes the permissions of
    its open sessions with it."""
    if existing is not None:
        iam.delete_role(
            client, name=role.role_name, path=_conf("IAM_PATH"), current=existing
        )
    role.exists_in_aws, role.revoked_sessions_until, role.missing_since = (
        False,
        None,
        None,
    )
    role.save(
        update_fields=["exists_in_aws", "revoked_sessions_until", "missing_since"]
    )


def revoked_sessions_policy_name() -> str:
    return f"{_conf('POLICY_PREFIX')}RevokedSessions"

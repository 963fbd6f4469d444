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
     margin (shells started while IAM still honoured the old trust).
A step's failure never undoes an earlier one (a savepoint per step); the
role stays behind its desired version until every step is done, so the
sweep and the task's retries resume the missing ones.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts_app import notifications, trust
from accounts_app.models import AccessRequest, IamUser, OperationRole
from accounts_app.services import readiness
from provisioning import aws, baseline, iam, policies, recovery, ssm
from provisioning.aws import AwsError, PermanentError, RetryLater
from provisioning.sync.outcomes import _conf

# The deny is written just before the trust: its cutoff covers a trust write
# up to this much later; a later one moves the cutoff and rewrites the deny.
TRUST_WRITE_ALLOWANCE = timedelta(seconds=10)


class StepWaits(RetryLater):
    """An ending step that must run again after a delay (`countdown`)."""

    def __init__(self, message: str, *, countdown: float) -> None:
        super().__init__(message, action="ssm:TerminateSession", code="Propagation")
        self.countdown = countdown


def _margin() -> timedelta:
    return timedelta(seconds=_conf("IAM_PROPAGATION_SECONDS"))


def _window() -> timedelta:
    return timedelta(seconds=_conf("MAX_SESSION_DURATION"))


def _iso(when: datetime) -> str:
    return when.isoformat()


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _ended(role: OperationRole, now: datetime):
    return AccessRequest.ended_grants(now).filter(role=role)


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
    role: OperationRole, grants: list[AccessRequest], users: list[IamUser]
) -> AwsError | None:
    """Make the role match the database, ending access first: deny, trust,
    SSM (and, when nobody is left, delete the role last). Returns the failure
    to raise once the steps that succeeded are committed."""
    now = timezone.now()
    client = aws.client("iam", role.account)
    principals = trust.principal_arns(role, users)
    ending = _endings_open(role, grants, users, now=now)
    existing = iam.role_get(client, name=role.role_name, path=_conf("IAM_PATH"))
    failures: list[AwsError] = []
    _step(failures, _deny_step, role, client, existing, now)
    if principals:
        args = (client, principals, grants, users, existing, ending)
        _step(failures, _trust_step, role, *args)
        _step(failures, _ssm_step, role)
    else:
        closed = _step(failures, _close_step, role, client, existing)
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
) -> bool:
    """Find what ended since the last sync. A grant replaced by an extension
    (the person's current grant was approved no later than the old one ended)
    is no ending: the person stays in the trust. A removed cross-account user
    is one. Every ending whose trust is not rewritten yet gets the cutoff
    the deny written now must cover (it moves with each try). Returns whether
    a grant's ending waits for the trust rewrite."""
    held_since: dict[str, Any] = {}
    for g in grants:
        if g.requester in users:
            name = g.requester.name
            held_since[name] = min(
                filter(None, [g.decided_at, held_since.get(name)]), default=None
            )
    fresh = _ended(role, now).filter(trust_removed_at__isnull=True)
    waiting = False
    for g in fresh.select_related("requester").only("ended_at", "requester__name"):
        name = g.requester.name
        if name in held_since and (
            held_since[name] is None
            or g.ended_at is None
            or held_since[name] <= g.ended_at
        ):
            AccessRequest.objects.filter(pk=g.pk).update(
                deny_cutoff=None,
                deny_written_at=now,
                trust_removed_at=now,
                sessions_ended_at=now,
            )
        else:
            waiting = True
    cutoff = now + _margin() + TRUST_WRITE_ALLOWANCE
    # None open: no row to update (only this sync, under the role lock, sets cutoffs).
    if waiting:
        fresh.update(deny_cutoff=cutoff)
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
    return waiting


def _deny_entries(role: OperationRole, now: datetime) -> dict[str, datetime]:
    """Who the deny names, with the latest cutoff each: every ending whose
    sessions may still be valid, whether or not the person holds the role
    again (their sessions issued before the cutoff stay denied)."""
    since = now - _window()
    entries: dict[str, datetime] = {}
    rows = AccessRequest.objects.filter(role=role, deny_cutoff__gt=since)
    for name, cutoff in rows.values_list("requester__name", "deny_cutoff"):
        entries[name] = max(cutoff, entries.get(name, cutoff))
    for entry in role.ended_principals or []:
        cutoff = _when(entry.get("cutoff"))
        if cutoff and cutoff > since:
            name = entry["name"]
            entries[name] = max(cutoff, entries.get(name, cutoff))
    return entries


def _deny_write(role: OperationRole, client: Any, role_id: str, now: datetime) -> None:
    entries = _deny_entries(role, now)
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
    role: OperationRole, client: Any, existing: dict | None, now: datetime
) -> None:
    """Step 1. A role missing in AWS has no session to deny."""
    if existing is not None:
        _deny_write(role, client, existing.get("RoleId") or role.unique_id, now)
    AccessRequest.objects.filter(
        role=role, deny_cutoff__isnull=False, deny_written_at__isnull=True
    ).update(deny_written_at=now)
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
        _deny_write(role, client, role.unique_id, written)
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


def _ssm_step(role: OperationRole) -> None:
    """Step 3: terminate the SSM sessions of every ending whose trust is
    rewritten. The step is done by a run that starts once the propagation
    margin after the trust write has passed; until then it waits."""
    started = timezone.now()
    # Without termination (an emulated AWS) there is nothing to run again.
    margin = _margin() if _conf("TERMINATE_SSM_SESSIONS") else timedelta(0)
    grants = list(
        AccessRequest.objects.filter(
            role=role, trust_removed_at__isnull=False, sessions_ended_at__isnull=True
        )
        .select_related("requester")
        .only("trust_removed_at", "requester__name")
    )
    entries = [
        e
        for e in role.ended_principals or []
        if e.get("trust") and not e.get("sessions")
    ]
    if not grants and not entries:
        return
    names = {g.requester.name for g in grants} | {e["name"] for e in entries}
    if _conf("TERMINATE_SSM_SESSIONS"):
        # In every region where the role's account runs sessions.
        for region in role.account.session_regions:
            ssm_client = aws.client("ssm", role.account, region=region)
            for name in sorted(names):
                owner = policies.assumed_role_session_arn(
                    account_id=role.account.account_id,
                    role_name=role.role_name,
                    session_name=name,
                    partition=role.account.partition,
                )
                ssm.terminate_sessions(ssm_client, owner=owner)
    AccessRequest.objects.filter(
        pk__in=[g.pk for g in grants if g.trust_removed_at + margin <= started]
    ).update(sessions_ended_at=started)
    _principals_mark(
        role, "sessions", started, lambda e: _when(e["trust"]) + margin <= started
    )
    waits = [g.trust_removed_at + margin for g in grants]
    waits += [_when(e["trust"]) + margin for e in entries]
    later = max(waits)
    if later > started:
        raise StepWaits(
            "Ending access: the SSM sessions of "
            f"{', '.join(sorted(names))} are terminated once more when IAM has "
            f"propagated the trust ({int(margin.total_seconds())} s).",
            countdown=(later - started).total_seconds(),
        )


def _principals_mark(role: OperationRole, step: str, at: datetime, ready) -> None:
    """Record `step` done at `at` for the removed cross-account users whose
    ending is `ready` for it; endings done with and past the session window
    are forgotten."""
    if not role.ended_principals:
        return  # nothing recorded, nothing to write
    prior = {"deny": "cutoff", "sessions": "trust"}[step]
    since = at - _window()
    kept = []
    for entry in role.ended_principals or []:
        if entry.get(prior) and not entry.get(step) and ready(entry):
            entry[step] = _iso(at)
        done = all(entry.get(k) for k in ("deny", "trust", "sessions"))
        cutoff = _when(entry.get("cutoff"))
        if not (done and cutoff and cutoff <= since):
            kept.append(entry)
    role.ended_principals = kept
    role.save(update_fields=["ended_principals"])


def revoked_sessions_policy_name() -> str:
    return f"{_conf('POLICY_PREFIX')}RevokedSessions"

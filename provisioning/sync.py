"""Make AWS match the database, one object at a time (DESIGN §4).

Each function is keyed by id and reads the desired state when it runs, so
running it twice, late or out of order is harmless. Work on one object is
serialised by a row lock held while AWS is written.
"""

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from accounts_app import approval_rules, notifications, trust
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from accounts_app.services.access_requests import request_end
from accounts_app.sync_requests import desired_changed, request_sync
from provisioning import aws, baseline, iam, policies, recovery, ssm
from provisioning.aws import AwsError, DependencyMissing, PermanentError, RetryLater

log = logging.getLogger(__name__)


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


# --- Recording outcomes -------------------------------------------------------


def _record_success(obj: Model, version: int, **fields: Any) -> None:
    obj.applied_version = max(obj.applied_version, version)
    obj.last_error = ""
    obj.error_is_permanent = False
    obj.last_synced_at = timezone.now()
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save(
        update_fields=[
            "applied_version",
            "last_error",
            "error_is_permanent",
            "last_synced_at",
            *fields,
        ]
    )


def _record_error(model: type[Model], pk: int, exc: AwsError) -> None:
    permanent = isinstance(exc, PermanentError)
    message = exc.message if permanent else f"Retrying: {exc.message}"
    with transaction.atomic():
        model.objects.filter(pk=pk).update(
            last_error=message[:2000], error_is_permanent=permanent
        )
    log.warning("sync of %s %s failed: %s", model.__name__, pk, message)


# --- Recovery: AWS lost what opsgate made (see provisioning.recovery) ----


def account_baseline_check(*, account_id: int, settle: timedelta) -> bool:
    """The sweep's look at an account whose baseline the database has in sync:
    is the operators group still there (one GetGroup)? When it is not, AWS lost
    opsgate's objects: mark the baseline out of sync, converge it, and
    reconcile the account. Returns False when the group was missing. A
    baseline synced less than `settle` ago is left alone: IAM reads are
    eventually consistent, a group created seconds ago may not show yet."""
    account = AwsAccount.objects.get(pk=account_id)
    started = timezone.now()
    if not baseline.baseline_is_current(account):
        return True  # the worker converges it anyway
    if account.last_synced_at and account.last_synced_at > started - settle:
        return True
    client = aws.client("iam", account)
    if account.holds_people:
        if iam.group_exists(client, name=_conf("GROUP_NAME")):
            return True
        reason = f"the group {_conf('GROUP_NAME')} is missing in AWS"
    else:  # a roles-only account has no group: look at a role policy
        arn = baseline.role_policy_arns(account)[0]
        if iam.policy_exists(client, arn=arn):
            return True
        reason = f"the policy {arn} is missing in AWS"
    if recovery.baseline_mark_missing(account_id=account_id, since=started):
        request_sync(account)
    recovery.account_reconcile_request(account_id=account_id, reason=reason)
    return False


def _baseline_repair(*, account_id: int, since: datetime, exc: AwsError) -> None:
    recovery.baseline_mark_missing(account_id=account_id, since=since)
    recovery.account_reconcile_request(account_id=account_id, reason=exc.message)
    account_baseline_sync(account_id=account_id)


def _repairs_baseline_once(model: type[Model], key: str):
    """For the sync of a user or role: DependencyMissing means part of the
    baseline is gone. Repair the baseline, then run the sync once more; a second
    DependencyMissing is left to the task's retries and backoff (IAM may still
    be propagating what was just created)."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(**kwargs: Any) -> None:
            started = timezone.now()
            try:
                return function(**kwargs)
            except DependencyMissing as exc:
                pk = kwargs[key]
                account_id = model.objects.values_list("account_id", flat=True).get(
                    pk=pk
                )
                try:
                    _baseline_repair(account_id=account_id, since=started, exc=exc)
                except AwsError as baseline_exc:
                    _record_error(model, pk, baseline_exc)
                    raise
                return function(**kwargs)

        return wrapper

    return decorate


def _retries_dependents_after_repair(function):
    """When the baseline sync wrote to AWS (it repaired something), the users
    and roles of the account that a permanent error stopped may have failed for
    want of it: each gets one more try."""

    @functools.wraps(function)
    def wrapper(*, account_id: int) -> None:
        with aws.observe_calls() as calls:
            function(account_id=account_id)
        if any(aws.is_write(call) for call in calls):
            _retry_stopped_objects(account_id=account_id)

    return wrapper


def _retry_stopped_objects(*, account_id: int) -> None:
    with transaction.atomic():
        for model in (IamUser, OperationRole):
            stopped = model.objects.filter(
                account_id=account_id, error_is_permanent=True
            )
            for obj in stopped.select_for_update(of=("self",)):
                audit_record(
                    actor=None,
                    action="sync.retry",
                    obj=obj,
                    after={"reason": "the account's baseline was repaired"},
                )
                desired_changed(obj)


# --- Account baseline ---------------------------------------------------------

# Starts the error recorded while a boundary is missing; the sweep retries such
# objects (provisioning.tasks.sweep) until the deployment step has run.
BOUNDARY_MISSING = "Permissions boundary missing"


def _require_boundaries(client: Any, account: AwsAccount) -> None:
    """The boundaries are the deployment's (provisioning.boundaries): opsgate
    may not create them, only check that they exist."""
    from provisioning import boundaries

    missing = [
        arn
        for arn in baseline.boundary_arns(account)
        if not iam.policy_exists(client, arn=arn)
    ]
    if missing:
        raise PermanentError(
            f"{BOUNDARY_MISSING} in account {account.account_id}: "
            f"{', '.join(missing)}. opsgate does not create its permissions "
            f"boundaries: run `{boundaries.COMMAND}` with an administrator's "
            f"credentials for this account, or deploy {boundaries.TEMPLATE}. "
            "opsgate checks again at every sweep and carries on by itself.",
            action="iam:GetPolicy",
            code="BoundaryMissing",
        )


@_retries_dependents_after_repair
def account_baseline_sync(*, account_id: int) -> None:
    """The managed policies (group's and roles') and the operators group, once
    the deployment's permissions boundaries exist."""
    try:
        with transaction.atomic():
            account = AwsAccount.objects.select_for_update(of=("self",)).get(
                pk=account_id
            )
            if baseline.baseline_is_current(account):
                return
            version = account.desired_version
            client = aws.client("iam", account)
            _require_boundaries(client, account)
            for name, document in baseline.baseline_documents(account).items():
                iam.ensure_managed_policy(
                    client,
                    arn=baseline.managed_policy_arn(account, name),
                    name=name,
                    path=_conf("IAM_PATH"),
                    document=document,
                )
            if account.holds_people:
                iam.ensure_group(
                    client,
                    name=_conf("GROUP_NAME"),
                    path=_conf("IAM_PATH"),
                    policy_arns=baseline.group_policy_arns(account),
                )
            _record_success(
                account,
                version,
                baseline_fingerprint=baseline.baseline_fingerprint(account),
                trust_policy_quota=read_trust_policy_quota(client, account),
            )
    except AwsError as exc:
        _record_error(AwsAccount, account_id, exc)
        raise


def _ensure_baseline(account: AwsAccount) -> None:
    if not baseline.baseline_is_current(account):
        account_baseline_sync(account_id=account.pk)


# --- IAM users ----------------------------------------------------------------


def _apply_user(user: IamUser) -> None:
    """Create or fix the IAM user. The caller holds the row lock."""
    version = user.desired_version
    result = iam.ensure_user(
        aws.client("iam", user.account),
        name=user.name,
        path=_conf("IAM_PATH"),
        tags=policies.user_tags(email=user.email),
        group=_conf("GROUP_NAME"),
        boundary_arn=baseline.user_boundary_arn(user.account),
    )
    created = result.get("CreateDate")
    recovery.note_recreated(user, result.get("UserId", ""))
    _record_success(
        user,
        version,
        arn=result["Arn"],
        unique_id=result.get("UserId", ""),
        # AWS's own date: a user re-created (after a deletion behind opsgate's
        # back) is new to IAM again, and trusts may reject it for a while.
        created_in_aws_at=created or user.created_in_aws_at or timezone.now(),
    )


@_repairs_baseline_once(IamUser, "iam_user_id")
def iam_user_sync(*, iam_user_id: int) -> None:
    user = IamUser.objects.select_related("account").get(pk=iam_user_id)
    if user.state != IamUserState.ACTIVE:
        _remove_user(iam_user_id)
        return
    try:
        _ensure_baseline(user.account)
        with transaction.atomic():
            user = (
                IamUser.objects.select_for_update(of=("self",))
                .select_related("account")
                .get(pk=iam_user_id)
            )
            if user.applied_version >= user.desired_version and user.arn:
                return
            _apply_user(user)
    except AwsError as exc:
        _record_error(IamUser, iam_user_id, exc)
        raise


def _remove_user(iam_user_id: int) -> None:
    """Offboarding (DESIGN §4.1), in three steps, each committed on its own:
    (1) the person is disabled in the identity account at once (no console
    password, access keys, MFA devices or groups, so no sts:AssumeRole),
    whatever the other accounts do; (2) every role that listed them is
    rewritten, each on its own, so an account that does not answer holds up
    none of the others; (3) once all those roles have converged, the IAM user
    is deleted (no trust keeps a dangling AIDA… id). While a role waits, the
    user stays disabled with a "retrying" error naming it: the sweep runs this
    again, and the account is cleaned when it answers."""
    try:
        if not _user_step(iam_user_id, iam.disable_user):
            return
        waiting = _rewrite_roles_of(iam_user_id)
        if waiting:
            person = IamUser.objects.select_related("account").get(pk=iam_user_id)
            raise RetryLater(
                f"Disabled in {person.account}: no console password, access "
                "keys, MFA devices or groups. The IAM user is deleted once "
                f"these roles no longer trust it: {'; '.join(waiting)}",
                action="iam:DeleteUser",
                code="RolesPending",
            )
        _user_step(iam_user_id, iam.delete_user, record=True)
    except AwsError as exc:
        _record_error(IamUser, iam_user_id, exc)
        raise


def _user_step(iam_user_id: int, step: Any, *, record: bool = False) -> bool:
    """Run `step` (iam.disable_user or iam.delete_user) on an offboarded
    person's IAM user under the row's lock; False when the record has already
    converged. Never touches another record's IAM user: with an id recorded,
    only that user, and never one whose id a person still active holds (an
    earlier release let a re-added person adopt the old user); with no id
    recorded, nothing once the name is someone's again (people.person_add adds
    them only after this record has converged, so the user is theirs)."""
    with transaction.atomic():
        user = (
            IamUser.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=iam_user_id)
        )
        if user.applied_version >= user.desired_version:
            return False
        version = user.desired_version
        successors = IamUser.objects.filter(
            account=user.account, name__iexact=user.name, state=IamUserState.ACTIVE
        )
        if user.unique_id or not successors.exists():
            step(
                aws.client("iam", user.account),
                name=user.name,
                path=_conf("IAM_PATH"),
                unique_id=user.unique_id,
                spare_ids=frozenset(
                    i for i in successors.values_list("unique_id", flat=True) if i
                ),
                service_credentials=_conf("DELETE_SERVICE_CREDENTIALS"),
            )
        if record:
            _record_success(user, version)
    return True


def _rewrite_roles_of(iam_user_id: int) -> list[str]:
    """Sync every role the person ever had a grant on that is behind, each on
    its own; what still waits ("<role> in <account>: <why>")."""
    role_ids = AccessRequest.objects.filter(requester_id=iam_user_id).values("role_id")
    errors: dict[int, str] = {}
    for role in OperationRole.behind().filter(pk__in=role_ids):
        try:
            role_sync(role_id=role.pk)
        except AwsError as exc:
            errors[role.pk] = exc.message
    behind = OperationRole.behind().filter(pk__in=role_ids).select_related("account")
    return [
        f"{role.role_name} in {role.account}: "
        f"{errors.get(role.pk, 'not rewritten yet')}"
        for role in behind.order_by("pk")
    ]


# --- Operation roles ----------------------------------------------------------


def role_description(role: OperationRole) -> str:
    # Descriptions are plain text to IAM but restricted in characters; the
    # project name (any script) reaches AWS only as a tag value.
    return f"opsgate operation role, run as {role.os_user}"


def _propagation_or_permanent(exc: AwsError, users: list[IamUser]) -> AwsError:
    """ "Invalid principal" soon after CreateUser is IAM eventual consistency."""
    if exc.code != "MalformedPolicyDocument" or "principal" not in exc.message.lower():
        return exc
    window = timedelta(seconds=_conf("PRINCIPAL_PROPAGATION_SECONDS"))
    now = timezone.now()
    fresh = [
        u.name
        for u in users
        if u.created_in_aws_at and now - u.created_in_aws_at < window
    ]
    if fresh:
        return RetryLater(
            f"{exc.message} (IAM has not yet propagated the new user(s) "
            f"{', '.join(sorted(fresh))}; retrying)",
            action=exc.action,
            code=exc.code,
        )
    names = ", ".join(sorted(u.name for u in users)) or "none"
    return PermanentError(
        f"{exc.message}. One of the principals does not exist in IAM "
        f"(users: {names}; cross-account ARNs are checked by AWS too). "
        "Fix or remove it and retry.",
        action=exc.action,
        code=exc.code,
    )


def _principals_missing_or(
    exc: AwsError, role: OperationRole, users: list[IamUser]
) -> AwsError:
    """ "Invalid principal" long after CreateUser: if some of the people are
    gone from IAM (AWS lost them), they are created again and the role retried
    instead of stopping at a permanent error."""
    if not (
        isinstance(exc, PermanentError)
        and exc.code == "MalformedPolicyDocument"
        and "principal" in exc.message.lower()
    ):
        return exc
    try:
        gone = [
            u
            for u in users
            if not iam.user_exists(aws.client("iam", u.account), name=u.name)
        ]
    except AwsError:
        return exc
    if not gone:
        return exc
    for user in gone:
        user.bump()
    names = ", ".join(sorted(u.name for u in gone))
    recovery.account_reconcile_request(
        account_id=role.account_id, reason=f"IAM user(s) {names} missing in AWS"
    )
    return RetryLater(
        f"{exc.message} (the IAM user(s) {names} are missing in AWS; opsgate "
        "creates them again and retries)",
        action=exc.action,
        code=exc.code,
    )


def _role_missing_note(role: OperationRole, exc: AwsError) -> None:
    """A failed sync that shows the role, or a policy it needs, missing: its
    grants are not shown as active until a sync succeeds, and the account is
    reconciled (the role was in AWS before, so AWS lost it)."""
    recreating = role.exists_in_aws and exc.action == "iam:CreateRole"
    if not (recreating or isinstance(exc, DependencyMissing)):
        return
    OperationRole.objects.filter(pk=role.pk, missing_since__isnull=True).update(
        missing_since=timezone.now()
    )
    if recreating:
        recovery.account_reconcile_request(
            account_id=role.account_id, reason=f"the role {role.role_name} is missing"
        )


def _approvals_hold(grant: AccessRequest, approvers: set[int]) -> str:
    """Why `grant` may no longer reach AWS ("" when it may): its approvals
    must still come from enough people who may approve it now (the quorum; a
    grant approved before quorums existed has only its decider)."""
    project = grant.role.project.name
    if grant.break_glass:
        if grant.role.project.allow_break_glass and (
            grant.role.project.break_glass_people.filter(
                pk=grant.requester.user_id, is_active=True
            ).exists()
        ):
            return ""
        return f"{grant.requester.name} may no longer use break-glass on {project}."
    if grant.auto_approved:
        if approval_rules.auto_rule_still_allows(grant):
            return ""
        return f"the auto-approval rule no longer lists {grant.requester.name}."
    given = list(grant.approvals.select_related("approver"))
    if not given:
        if grant.decided_by_id in approvers:
            return ""
        return f"{grant.decided_by.get_username()} may no longer approve {project}."
    valid = [
        a
        for a in given
        if a.approver_id in approvers and a.approver_id != grant.requester.user_id
    ]
    if len(valid) >= grant.approvals_required:
        return ""
    if grant.approvals_required == 1:
        return f"{given[-1].approver.get_username()} may no longer approve {project}."
    return (
        f"only {len(valid)} of the {grant.approvals_required} approvals it "
        f"needs are by people who may still approve {project}."
    )


def _still_allowed(role: OperationRole, grants) -> list[AccessRequest]:
    """Re-check, at provisioning time, grants not provisioned yet: their
    approvals must still be by active approvers of the role, enough of them
    for its quorum. A grant that fails is revoked (with an audit row) instead
    of reaching AWS."""
    approvers = set(approval_rules.role_approvers(role).values_list("pk", flat=True))
    kept = []
    for grant in grants:
        unchecked = grant.decided_by_id is None and not (
            grant.break_glass or grant.auto_approved
        )
        if grant.provisioned_at or unchecked:
            kept.append(grant)
            continue
        grant.role = role
        why = _approvals_hold(grant, approvers)
        if not why:
            kept.append(grant)
            continue
        request_end(
            grant,
            status=RequestStatus.REVOKED,
            actor=None,
            action="request.revoke",
            comment=(f"Not provisioned: {why}"),
            audit_extra={"reason": "approver no longer allowed"},
            # This sync is writing the role's trust without the grant.
            resync_role=False,
        )
    return kept


@_repairs_baseline_once(OperationRole, "role_id")
def role_sync(*, role_id: int) -> None:
    role = OperationRole.objects.select_related("account").get(pk=role_id)
    users: list[IamUser] = []
    failure: AwsError | None = None
    try:
        _ensure_baseline(role.account)
        with transaction.atomic():
            role = (
                OperationRole.objects.select_for_update(of=("self",))
                .select_related("account", "project")
                .get(pk=role_id)
            )
            version = role.desired_version
            grants = _still_allowed(
                role,
                AccessRequest.active_grants()
                .filter(role=role)
                .select_related("requester__account", "decided_by"),
            )
            users = [
                g.requester for g in grants if g.requester.state == IamUserState.ACTIVE
            ]
            for user in users:
                if not user.arn or user.applied_version < user.desired_version:
                    if user.account_id != role.account_id:
                        _ensure_baseline(user.account)  # the identity account
                    locked = (
                        IamUser.objects.select_for_update(of=("self",))
                        .select_related("account")
                        .get(pk=user.pk)
                    )
                    _apply_user(locked)
                    user.arn, user.created_in_aws_at = (
                        locked.arn,
                        locked.created_in_aws_at,
                    )
            failure = _role_converge(role, grants, users)
            if failure is None:
                _record_success(role, version)
        if failure is not None:
            raise failure
    except AwsError as exc:
        exc = _propagation_or_permanent(exc, users)
        exc = _principals_missing_or(exc, role, users)
        _record_error(OperationRole, role_id, exc)
        _role_missing_note(role, exc)
        raise exc from None


# --- Ending access (DESIGN §4.1) ---------------------------------------------
#
# A grant that ended (revoke, expiry, review, offboarding) or a cross-account
# user removed from a role is an "ending", closed in AWS by three steps in
# this order, each recorded on its own when done (AccessRequest.deny_cutoff,
# deny_written_at, trust_removed_at, sessions_ended_at; the same keys in
# OperationRole.ended_principals):
#   1. the role's inline deny covers the person's sessions issued before the
#      cutoff (the trust write + IAM_PROPAGATION_SECONDS);
#   2. the trust no longer lists them (or, for the last one, trusts nobody and
#      the role is deleted);
#   3. their SSM sessions are terminated, and once more after the propagation
#      margin (shells started while IAM still honoured the old trust).
# A step's failure never undoes an earlier one (a savepoint per step); the
# role stays behind its desired version until every step is done, so the
# sweep and the task's retries resume the missing ones.

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
    _endings_open(role, grants, users, now=now)
    existing = iam.role_get(client, name=role.role_name, path=_conf("IAM_PATH"))
    failures: list[AwsError] = []
    _step(failures, _deny_step, role, client, existing, now)
    if principals:
        _step(failures, _trust_step, role, client, principals, grants, users, existing)
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
) -> None:
    """Find what ended since the last sync. A grant replaced by an extension
    (the person's current grant was approved no later than the old one ended)
    is no ending: the person stays in the trust. A removed cross-account user
    is one. Every ending whose trust is not rewritten yet gets the cutoff
    the deny written now must cover (it moves with each try)."""
    held_since: dict[str, Any] = {}
    for g in grants:
        if g.requester in users:
            name = g.requester.name
            held_since[name] = min(
                filter(None, [g.decided_at, held_since.get(name)]), default=None
            )
    fresh = _ended(role, now).filter(trust_removed_at__isnull=True)
    for g in fresh.select_related("requester"):
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
    cutoff = now + _margin() + TRUST_WRITE_ALLOWANCE
    _ended(role, now).filter(trust_removed_at__isnull=True).update(deny_cutoff=cutoff)
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


def _trust_done(role: OperationRole, at: datetime) -> bool:
    """Record step 2 at `at`; a cutoff that no longer covers the propagation
    after `at` moves. Returns True when one moved (the deny must follow)."""
    covered = at + _margin()
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


def _trust_step(
    role: OperationRole,
    client: Any,
    principals: list[str],
    grants: list[AccessRequest],
    users: list[IamUser],
    existing: dict | None,
) -> None:
    """Step 2 with principals left: the role's whole trust (the role created
    when missing), then the deny once more if the role is new or a cutoff
    moved."""
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
    if _trust_done(role, written) or existing is None:
        _deny_write(role, client, role.unique_id, written)
    role.arn, role.exists_in_aws, role.missing_since = result["Arn"], True, None
    role.applied_extra_principal_arns = sorted(role.extra_principal_arns or [])
    role.save(
        update_fields=[
            "arn",
            "unique_id",
            "exists_in_aws",
            "missing_since",
            "applied_extra_principal_arns",
        ]
    )
    newly = AccessRequest.objects.filter(
        pk__in=[g.pk for g in grants if g.requester in users],
        provisioned_at__isnull=True,
    )
    active_ids = list(newly.values_list("pk", flat=True))
    newly.update(provisioned_at=timezone.now())
    if active_ids:
        notifications.on_commit(notifications.grants_active, active_ids)


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
        ).select_related("requester")
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


# --- Capacity -----------------------------------------------------------------


def read_trust_policy_quota(client: Any, account: AwsAccount) -> int | None:
    """AssumeRolePolicySizeQuota from GetAccountSummary, stored on the account
    for the approval check (accounts_app.trust); the value stored before when
    AWS does not answer."""
    try:
        summary = iam.account_summary(client)
    except AwsError as exc:
        log.warning("GetAccountSummary failed, keeping the stored quota: %s", exc)
        return account.trust_policy_quota
    quota = summary.get("AssumeRolePolicySizeQuota")
    return int(quota) if quota else account.trust_policy_quota

"""Make AWS match the database, one object at a time (DESIGN §4).

Each function is keyed by id and reads the desired state when it runs, so
running it twice, late or out of order is harmless. Work on one object is
serialised by a row lock held while AWS is written.
"""

import contextlib
import functools
import hashlib
import json
import logging
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    IamUserState,
    OperationRole,
)
from provisioning import aws, iam, notifications, policies, ssm
from provisioning.aws import AwsError, DependencyMissing, PermanentError, RetryLater

log = logging.getLogger(__name__)


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


# --- What the baseline is -----------------------------------------------------


def baseline_documents(account: AwsAccount) -> dict[str, dict]:
    """Every customer-managed policy opsgate keeps in the account, by name."""
    where = {
        "account_id": account.account_id,
        "path": _conf("IAM_PATH"),
        "partition": account.partition,
    }
    return {
        **policies.group_policies(prefix=_conf("POLICY_PREFIX"), **where),
        **policies.role_policies(
            prefix=_conf("POLICY_PREFIX"),
            session_documents=_conf("SESSION_DOCUMENTS"),
            partition=account.partition,
        ),
    }


def boundary_arn(account: AwsAccount) -> str:
    """The operation roles' permissions boundary."""
    return _policy_arn(account, _conf("ROLE_BOUNDARY_NAME"))


def user_boundary_arn(account: AwsAccount) -> str:
    """The IAM users' (operators') permissions boundary."""
    return _policy_arn(account, _conf("USER_BOUNDARY_NAME"))


def _policy_arn(account: AwsAccount, name: str) -> str:
    return policies.policy_arn(
        account_id=account.account_id,
        path=_conf("IAM_PATH"),
        name=name,
        partition=account.partition,
    )


def group_policy_arns(account: AwsAccount) -> list[str]:
    names = policies.group_policies(
        prefix=_conf("POLICY_PREFIX"),
        account_id=account.account_id,
        path=_conf("IAM_PATH"),
        partition=account.partition,
    )
    return [_policy_arn(account, n) for n in names] + [
        policies.aws_managed_policy_arn(
            policies.AWS_MANAGED_GROUP_POLICY, account.partition
        )
    ]


def role_policy_arns(account: AwsAccount) -> list[str]:
    names = policies.role_policies(
        prefix=_conf("POLICY_PREFIX"),
        session_documents=_conf("SESSION_DOCUMENTS"),
        partition=account.partition,
    )
    return [_policy_arn(account, n) for n in names]


def baseline_fingerprint(account: AwsAccount) -> str:
    """Changes when a new release or a setting changes what the baseline holds."""
    material = {
        "documents": baseline_documents(account),
        "boundaries": [_conf("ROLE_BOUNDARY_NAME"), _conf("USER_BOUNDARY_NAME")],
        "group": _conf("GROUP_NAME"),
        "group_policies": group_policy_arns(account),
        "path": _conf("IAM_PATH"),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def baseline_is_current(account: AwsAccount) -> bool:
    return (
        account.applied_version >= account.desired_version
        and account.baseline_fingerprint == baseline_fingerprint(account)
    )


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


# --- Recovery: AWS lost what opsgate made -------------------------------------
#
# An account wiped, a sandbox restored, a wrong `terraform destroy`: the
# database still says "in sync". What notices: the sweep's look at the
# operators group (account_baseline_check), a NoSuchEntity on a call that names
# another of opsgate's objects (DependencyMissing), a user or role that had to
# be created again. Each marks the baseline out of sync and/or asks for a
# reconcile of the account at once; a repaired baseline gives the objects that
# failed permanently one more try.

_reconciling: ContextVar[frozenset[int]] = ContextVar(
    "opsgate_reconciling", default=frozenset()
)


@contextlib.contextmanager
def reconciling(account_id: int):
    """Inside a reconcile of the account, the syncs it runs ask for no other."""
    token = _reconciling.set(_reconciling.get() | {account_id})
    try:
        yield
    finally:
        _reconciling.reset(token)


def account_reconcile_request(*, account_id: int, reason: str) -> bool:
    """opsgate's objects are missing in the account: reconcile it now instead of
    at the next hourly run. One request at a time: another is made once a
    reconcile has run since, or after RECONCILE_QUIET_SECONDS (the first may
    have been lost with the broker). Returns True when it asked."""
    if account_id in _reconciling.get():
        return False
    now = timezone.now()
    stale = now - timedelta(seconds=_conf("RECONCILE_QUIET_SECONDS"))
    asked = (
        AwsAccount.objects.filter(pk=account_id)
        .filter(
            Q(objects_missing_at__isnull=True)
            | Q(objects_missing_at__lt=stale)
            | Q(last_reconciled_at__gte=F("objects_missing_at"))
        )
        .update(objects_missing_at=now)
    )
    if asked:
        log.warning("account %s: %s; reconciling the account now", account_id, reason)
        from provisioning import tasks  # tasks imports this module

        tasks.enqueue_reconcile(account_id)
    return bool(asked)


def baseline_mark_missing(*, account_id: int, since: datetime) -> bool:
    """Part of the baseline is gone although the database has it in sync: mark
    it out of sync, unless it already is or a sync converged it after `since`
    (when the caller started looking). Returns True when it marked it."""
    marked = (
        AwsAccount.objects.filter(
            pk=account_id, applied_version__gte=F("desired_version")
        )
        .filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=since))
        .update(desired_version=F("desired_version") + 1, error_is_permanent=False)
    )
    return bool(marked)


def account_baseline_check(*, account_id: int, settle: timedelta) -> bool:
    """The sweep's look at an account whose baseline the database has in sync:
    is the operators group still there (one GetGroup)? When it is not, AWS lost
    opsgate's objects: mark the baseline out of sync, converge it, and
    reconcile the account. Returns False when the group was missing. A
    baseline synced less than `settle` ago is left alone: IAM reads are
    eventually consistent, a group created seconds ago may not show yet."""
    account = AwsAccount.objects.get(pk=account_id)
    started = timezone.now()
    if not baseline_is_current(account):
        return True  # the worker converges it anyway
    if account.last_synced_at and account.last_synced_at > started - settle:
        return True
    if iam.group_exists(aws.client("iam", account), name=_conf("GROUP_NAME")):
        return True
    if baseline_mark_missing(account_id=account_id, since=started):
        from provisioning import tasks

        tasks.enqueue_sync(account)
    reason = f"the group {_conf('GROUP_NAME')} is missing in AWS"
    account_reconcile_request(account_id=account_id, reason=reason)
    return False


def _baseline_repair(*, account_id: int, since: datetime, exc: AwsError) -> None:
    baseline_mark_missing(account_id=account_id, since=since)
    account_reconcile_request(account_id=account_id, reason=exc.message)
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
    from provisioning import tasks
    from provisioning.audit import audit_record

    with transaction.atomic():
        for model in (IamUser, OperationRole):
            stopped = model.objects.filter(
                account_id=account_id, error_is_permanent=True
            )
            for obj in stopped.select_for_update(of=("self",)):
                obj.bump()
                audit_record(
                    actor=None,
                    action="sync.retry",
                    obj=obj,
                    after={"reason": "the account's baseline was repaired"},
                )
                tasks.enqueue_sync(obj)


def _note_recreated(obj: Model, new_id: str) -> None:
    """A user or role the database had in AWS came back with another id: it
    had to be created again, so AWS lost it, and likely more of opsgate's
    objects there. Ask for a reconcile of the account once this commits."""
    believed = obj.unique_id and getattr(obj, "exists_in_aws", True)
    if believed and new_id and new_id != obj.unique_id:
        account_id, reason = obj.account_id, f"{obj} was missing in AWS"
        transaction.on_commit(
            lambda: account_reconcile_request(account_id=account_id, reason=reason)
        )


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
        for arn in (boundary_arn(account), user_boundary_arn(account))
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
            if baseline_is_current(account):
                return
            version = account.desired_version
            client = aws.client("iam", account)
            _require_boundaries(client, account)
            for name, document in baseline_documents(account).items():
                iam.ensure_managed_policy(
                    client,
                    arn=_policy_arn(account, name),
                    name=name,
                    path=_conf("IAM_PATH"),
                    document=document,
                )
            iam.ensure_group(
                client,
                name=_conf("GROUP_NAME"),
                path=_conf("IAM_PATH"),
                policy_arns=group_policy_arns(account),
            )
            _record_success(
                account, version, baseline_fingerprint=baseline_fingerprint(account)
            )
    except AwsError as exc:
        _record_error(AwsAccount, account_id, exc)
        raise


def _ensure_baseline(account: AwsAccount) -> None:
    if not baseline_is_current(account):
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
        boundary_arn=user_boundary_arn(user.account),
    )
    created = result.get("CreateDate")
    _note_recreated(user, result.get("UserId", ""))
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
    """Offboarding: first the roles that listed the person (so no trust policy
    keeps a dangling principal id), then the IAM user and what blocks its
    deletion. Never deletes a newer IAM user that took over the name."""
    try:
        role_ids = AccessRequest.objects.filter(requester_id=iam_user_id).values(
            "role_id"
        )
        for role in OperationRole.behind().filter(pk__in=role_ids):
            role_sync(role_id=role.pk)
        with transaction.atomic():
            user = (
                IamUser.objects.select_for_update(of=("self",))
                .select_related("account")
                .get(pk=iam_user_id)
            )
            if user.applied_version >= user.desired_version:
                return
            version = user.desired_version
            successor = IamUser.objects.filter(
                account=user.account,
                name__iexact=user.name,
                state=IamUserState.ACTIVE,
            ).exists()
            if user.unique_id or not successor:
                iam.delete_user(
                    aws.client("iam", user.account),
                    name=user.name,
                    path=_conf("IAM_PATH"),
                    unique_id=user.unique_id,
                    service_credentials=_conf("DELETE_SERVICE_CREDENTIALS"),
                )
            _record_success(user, version)
    except AwsError as exc:
        _record_error(IamUser, iam_user_id, exc)
        raise


# --- Operation roles ----------------------------------------------------------


def grant_holders(role_ids) -> dict[int, list[IamUser]]:
    """Active people with an active grant, by role id, in one query (pages
    showing the trust capacity of many roles pass these to trust_capacity)."""
    holders: dict[int, list[IamUser]] = {pk: [] for pk in role_ids}
    grants = AccessRequest.active_grants().filter(
        role_id__in=holders, requester__state=IamUserState.ACTIVE
    )
    for g in grants.select_related("requester"):
        holders[g.role_id].append(g.requester)
    return holders


def role_principals(
    role: OperationRole,
    *,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> list[str]:
    """Principal ARNs the role's trust must hold: users with an active grant
    (`holders` when the caller read them already), plus the cross-account
    users an admin attached."""
    path = _conf("IAM_PATH")
    if holders is None:
        holders = grant_holders([role.pk])[role.pk]
    users = set(holders)
    if extra_user is not None:
        users.add(extra_user)
    arns = {
        u.arn
        or policies.user_arn(
            account_id=role.account.account_id,
            path=path,
            name=u.name,
            partition=role.account.partition,
        )
        for u in users
    }
    return sorted(arns | set(role.extra_principal_arns or []))


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
    account_reconcile_request(
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
        account_reconcile_request(
            account_id=role.account_id, reason=f"the role {role.role_name} is missing"
        )


def _still_allowed(role: OperationRole, grants) -> list[AccessRequest]:
    """Re-check, at provisioning time, grants not provisioned yet: their
    approver must still be an active approver of the project. A grant that
    fails is revoked (with an audit row) instead of reaching AWS."""
    from provisioning.audit import audit_record

    approvers = set(
        role.project.approvers.filter(is_active=True).values_list("pk", flat=True)
    )
    kept = []
    for grant in grants:
        decided_by = grant.decided_by_id
        if grant.provisioned_at or decided_by is None or decided_by in approvers:
            kept.append(grant)
            continue
        grant.transition_to("revoked")
        grant.ended_at = timezone.now()
        grant.decision_comment = (
            f"{grant.decision_comment}\n[opsgate] Not provisioned: "
            f"{grant.decided_by.get_username()} may no longer approve "
            f"{role.project.name}."
        ).strip()
        grant.save(update_fields=["status", "ended_at", "decision_comment"])
        audit_record(
            actor=None,
            action="request.revoke",
            obj=grant,
            project=role.project,
            before={"status": "approved"},
            after={"status": "revoked", "reason": "approver no longer allowed"},
        )
    return kept


@_repairs_baseline_once(OperationRole, "role_id")
def role_sync(*, role_id: int) -> None:
    role = OperationRole.objects.select_related("account").get(pk=role_id)
    users: list[IamUser] = []
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
            principals = sorted(
                {u.arn for u in users} | set(role.extra_principal_arns or [])
            )
            client = aws.client("iam", role.account)
            now = timezone.now()
            if principals:
                result = iam.ensure_role(
                    client,
                    name=role.role_name,
                    path=_conf("IAM_PATH"),
                    trust=policies.trust_policy(principals),
                    tags=policies.role_tags(
                        project=role.project.name, os_user=role.os_user
                    ),
                    max_session_duration=_conf("MAX_SESSION_DURATION"),
                    policy_arns=role_policy_arns(role.account),
                    description=role_description(role),
                    boundary_arn=boundary_arn(role.account),
                )
                _note_recreated(role, result.get("RoleId", ""))
                role.unique_id = result.get("RoleId", "") or role.unique_id
                until = _revoke_sessions(role, client, users, now=now)
                _record_success(
                    role,
                    version,
                    arn=result["Arn"],
                    unique_id=role.unique_id,
                    exists_in_aws=True,
                    revoked_sessions_until=until,
                    missing_since=None,
                )
            else:
                # A deleted role takes its inline policies and the permissions
                # of its open sessions with it; SSM sessions are ended below.
                iam.delete_role(client, name=role.role_name, path=_conf("IAM_PATH"))
                _revoke_sessions(role, None, users, now=now)
                _record_success(
                    role,
                    version,
                    exists_in_aws=False,
                    revoked_sessions_until=None,
                    missing_since=None,
                )
            newly = AccessRequest.objects.filter(
                pk__in=[g.pk for g in grants if g.requester in users],
                provisioned_at__isnull=True,
            )
            active_ids = list(newly.values_list("pk", flat=True))
            newly.update(provisioned_at=timezone.now())
            if active_ids:
                notifications.on_commit(notifications.grants_active, active_ids)
    except AwsError as exc:
        exc = _propagation_or_permanent(exc, users)
        exc = _principals_missing_or(exc, role, users)
        _record_error(OperationRole, role_id, exc)
        _role_missing_note(role, exc)
        raise exc from None


def revoked_sessions_policy_name() -> str:
    return f"{_conf('POLICY_PREFIX')}RevokedSessions"


def _revoke_sessions(
    role: OperationRole, client: Any, users: list[IamUser], *, now
) -> Any:
    """End what outlives a revocation: terminate the SSM sessions of people
    whose grant ended since the last sync, and keep the role's inline deny of
    their sessions issued before then, for one MaxSessionDuration.
    `client` None: the role is gone, only SSM sessions are left to end.
    Returns when the deny may next shrink (None: no deny)."""
    window = timedelta(seconds=_conf("MAX_SESSION_DURATION"))
    ended = AccessRequest.ended_grants(now).filter(role=role)
    # By name: a person offboarded and added again is a new record, and their
    # new sessions must not be ended for the old record's revocation.
    ended = ended.exclude(requester__name__in=[u.name for u in users])
    newly = list(
        ended.filter(trust_removed_at__isnull=True).select_related("requester")
    )
    if newly and _conf("TERMINATE_SSM_SESSIONS"):
        ssm_client = aws.client("ssm", role.account)
        for name in sorted({g.requester.name for g in newly}):
            owner = policies.assumed_role_session_arn(
                account_id=role.account.account_id,
                role_name=role.role_name,
                session_name=name,
                partition=role.account.partition,
            )
            ssm.terminate_sessions(ssm_client, owner=owner)
    if newly:
        ended.filter(pk__in=[g.pk for g in newly]).update(trust_removed_at=now)
    if client is None:
        return None
    revoked: dict[str, Any] = {}
    recent = ended.filter(trust_removed_at__gt=now - window)
    for name, at in recent.values_list("requester__name", "trust_removed_at"):
        revoked[name] = max(at, revoked.get(name, at))
    if revoked or role.revoked_sessions_until is not None:
        iam.ensure_role_inline_policy(
            client,
            role=role.role_name,
            name=revoked_sessions_policy_name(),
            document=policies.revoked_sessions_policy(
                role_id=role.unique_id, revoked=revoked
            ),
        )
    return min(revoked.values()) + window if revoked else None


# --- Capacity -----------------------------------------------------------------


def trust_policy_quota(account: AwsAccount) -> int:
    """AssumeRolePolicySizeQuota from GetAccountSummary, cached for an hour."""
    from provisioning import soft_cache

    key = f"opsgate:trust-quota:{account.pk}"
    quota = soft_cache.get(key)
    if quota is None:
        try:
            summary = iam.account_summary(aws.client("iam", account))
            quota = int(
                summary.get("AssumeRolePolicySizeQuota")
                or _conf("DEFAULT_TRUST_POLICY_QUOTA")
            )
        except AwsError as exc:
            log.warning("GetAccountSummary failed, assuming the default quota: %s", exc)
            return _conf("DEFAULT_TRUST_POLICY_QUOTA")
        soft_cache.set(key, quota, 3600)
    return quota


def trust_capacity(
    role: OperationRole,
    *,
    extra_user: IamUser | None = None,
    holders: list[IamUser] | None = None,
) -> tuple[int, int]:
    """(characters used, characters allowed) of the role's minified trust policy,
    counting `extra_user` as if their grant were active."""
    principals = role_principals(role, extra_user=extra_user, holders=holders)
    used = policies.trust_policy_size(principals) if principals else 0
    return used, trust_policy_quota(role.account)

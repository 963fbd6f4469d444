"""An account's baseline (the managed policies and the operators group), made
once the deployment's permissions boundaries exist; and its repair when AWS lost
it (see provisioning.recovery): the sweep's check, and the retry of a user's or
role's sync that found part of it missing."""

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount, IamUser, OperationRole
from accounts_app.sync_requests import desired_changed, request_sync
from provisioning import aws, baseline, iam, recovery
from provisioning.aws import AwsError, DependencyMissing, PermanentError
from provisioning.sync.outcomes import _conf, _record_error, _record_success

log = logging.getLogger(__name__)


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

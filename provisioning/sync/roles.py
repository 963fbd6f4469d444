"""An operation role: its grants re-checked, the IAM users its trust names
made, then the role converged (provisioning.sync.ending); AWS's errors read
for what they mean (a principal not propagated yet, a user or role AWS lost)."""

import functools
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts_app import approval_rules
from accounts_app.models import (
    AccessRequest,
    Approval,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from accounts_app.services.access_requests import request_end
from provisioning import aws, baseline, iam, recovery
from provisioning.aws import AwsError, DependencyMissing, PermanentError, RetryLater
from provisioning.sync.accounts import _ensure_baseline, _repairs_baseline_once
from provisioning.sync.ending import _role_converge
from provisioning.sync.iam_user import _apply_user
from provisioning.sync.outcomes import _conf, _record_error, _record_success


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


def _approvals_hold(
    grant: AccessRequest, given: list[Approval], decider_may: Callable[[], bool]
) -> str:
    """Why `grant` may no longer reach AWS ("" when it may): its approvals
    (`given`, each with `allowed`: its approver may approve the role now) must
    still come from enough people (the quorum; a grant approved before
    quorums existed has only its decider, `decider_may`)."""
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
    # The approvers' names only for a refusal's message (read then).
    if not given:
        if decider_may():
            return ""
        return f"{grant.decided_by.get_username()} may no longer approve {project}."
    valid = [a for a in given if a.allowed and a.approver_id != grant.requester.user_id]
    if len(valid) >= grant.approvals_required:
        return ""
    if grant.approvals_required == 1:
        return f"{given[-1].approver.get_username()} may no longer approve {project}."
    return (
        f"only {len(valid)} of the {grant.approvals_required} approvals it "
        f"needs are by people who may still approve {project}."
    )


def _approvals_given(role: OperationRole, grants: list[AccessRequest]) -> dict:
    """{grant id: its approvals}, each marked `allowed` when its approver may
    approve `role` now: one query for all the grants (the role's approvers a
    subquery of it)."""
    if not grants:
        return {}
    approvers = approval_rules.role_approvers(role).filter(pk=OuterRef("approver_id"))
    given: dict[int, list[Approval]] = {g.pk: [] for g in grants}
    rows = Approval.objects.filter(access_request__in=[g.pk for g in grants])
    for approval in rows.annotate(allowed=Exists(approvers)):
        given[approval.access_request_id].append(approval)
    return given


def _still_allowed(role: OperationRole, grants) -> list[AccessRequest]:
    """Re-check, at provisioning time, grants not provisioned yet: their
    approvals must still be by active approvers of the role, enough of them
    for its quorum. A grant that fails is revoked (with an audit row) instead
    of reaching AWS. Grants already provisioned cost no query here."""
    grants = list(grants)
    checked = [
        g
        for g in grants
        if not g.provisioned_at
        and (g.decided_by_id is not None or g.break_glass or g.auto_approved)
    ]
    # Break-glass and rule grants are re-checked against their own lists.
    given = _approvals_given(
        role, [g for g in checked if not (g.break_glass or g.auto_approved)]
    )

    @functools.cache
    def approvers() -> set[int]:  # only for a grant without approval rows
        return approval_rules.role_approver_ids(role)

    revoked = set()
    for grant in checked:
        grant.role = role
        why = _approvals_hold(
            grant,
            given.get(grant.pk, []),
            lambda grant=grant: grant.decided_by_id in approvers(),
        )
        if not why:
            continue
        revoked.add(grant.pk)
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
    return [g for g in grants if g.pk not in revoked]


def _locked(role_id: int) -> OperationRole:
    return (
        OperationRole.objects.select_for_update(of=("self",))
        .select_related("account", "project")
        .get(pk=role_id)
    )


def _converge(role: OperationRole, users: list[IamUser]) -> AwsError | None:
    """Under the role's lock: its grants re-checked, the IAM users its trust
    names made (into `users`), the role converged and, when it all went
    through, its version recorded. Returns the failure to raise after the
    commit."""
    version = role.desired_version
    # The grants active now, and (in _role_converge) the endings as of the
    # same moment: a grant expiring while the users are made is not taken
    # for its own replacement (its expiry ends it in the next sync).
    read_at = timezone.now()
    grants = _still_allowed(
        role,
        # The decider's name only for a refusal (read then).
        AccessRequest.active_grants(read_at)
        .filter(role=role)
        .select_related("requester__account"),
    )
    users += [g.requester for g in grants if g.requester.state == IamUserState.ACTIVE]
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
            user.arn, user.created_in_aws_at = locked.arn, locked.created_in_aws_at
    failure = _role_converge(role, grants, users, read_at=read_at)
    if failure is None:
        _record_success(role, version)
    return failure


@_repairs_baseline_once(OperationRole, "role_id")
def role_sync(*, role_id: int) -> None:
    users: list[IamUser] = []
    try:
        with transaction.atomic():
            role = _locked(role_id)
            # The account's baseline is read with the role: when it is
            # current (nearly always) no read before the lock is needed.
            current = baseline.baseline_is_current(role.account)
            failure = _converge(role, users) if current else None
        if not current:
            # Made outside the role's lock: the account's sync locks the
            # account, then the roles a permanent error stopped.
            _ensure_baseline(role.account)
            with transaction.atomic():
                role = _locked(role_id)
                failure = _converge(role, users)
        if failure is not None:
            raise failure
    except AwsError as exc:
        exc = _propagation_or_permanent(exc, users)
        exc = _principals_missing_or(exc, role, users)
        _record_error(OperationRole, role_id, exc)
        _role_missing_note(role, exc)
        raise exc from None

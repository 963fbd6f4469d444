"""The whole check of one grant, its retries while IAM propagates, and the
outcome recorded (provisioning.tasks.check_readiness runs it, for the
grants one sync made active at once)."""

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from accounts_app.models import AccessRequest
from accounts_app.services import readiness as readiness_service
from provisioning.aws import AwsError
from provisioning.readiness.checks import Check, Outcome, conf, failed_call
from provisioning.readiness.instances import instances_check
from provisioning.readiness.role import role_checks
from provisioning.readiness.simulate import simulate_check
from provisioning.readiness.user import user_checks

log = logging.getLogger(__name__)


def changed_at(grant: AccessRequest) -> datetime | None:
    """When the last change the checks depend on was written to AWS: the
    grant's trust, the role's and the person's last syncs."""
    times = [
        grant.provisioned_at,
        grant.role.last_synced_at,
        grant.requester.last_synced_at,
    ]
    return max((t for t in times if t), default=None)


def check_grant(
    grant: AccessRequest, *, now: datetime | None = None, shared: dict | None = None
) -> Outcome:
    """Every check of one grant, read from AWS. `shared`: what the grants of
    one task share (their role's reads and instances, by role), filled here."""
    now = now or timezone.now()
    shared = {} if shared is None else shared
    since = changed_at(grant)
    window = timedelta(seconds=conf("READINESS_PROPAGATION_SECONDS"))
    recent = since is not None and now - since < window
    checks = user_checks(grant, recent=recent)
    checks += role_checks(grant, recent=recent, reads=shared.setdefault("role", {}))
    by_role = shared.setdefault("instances", {})
    if grant.role_id not in by_role:
        by_role[grant.role_id] = instances_check(grant)
    instances = by_role[grant.role_id]
    checks.append(instances)
    if conf("READINESS_SIMULATE"):
        checks.append(simulate_check(grant, instances.rows))
    return Outcome(checks)


def retry_in(
    grant: AccessRequest, outcome: Outcome, *, attempt: int, now=None
) -> float:
    """Seconds until the next try when the outcome may change once IAM
    propagated (0: report it now). Backoff 5, 10, 20, 40 s… within the
    window after the last change."""
    if outcome.ready or not outcome.propagating:
        return 0.0
    now = now or timezone.now()
    since = changed_at(grant) or now
    left = (
        since + timedelta(seconds=conf("READINESS_PROPAGATION_SECONDS")) - now
    ).total_seconds()
    if left <= 0:
        return 0.0
    return min(5.0 * 2**attempt, left)


def grants_readiness_run(
    *, grant_ids: list[int], attempt: int = 0, retry: bool = True
) -> tuple[float, list[int]]:
    """Check grants (those one sync made active: one role's) and record each
    outcome; the role and its instances are read once for them all. Returns
    the seconds until the task should try again (IAM propagation) and the
    grants it should try then (0 and none when all are recorded). A grant
    that ended, or has not started, is not checked."""
    shared: dict = {}
    waits: dict[int, float] = {}
    for grant_id in grant_ids:
        grant = readiness_service.checkable_grant(grant_id)
        if grant is None:
            readiness_service.readiness_stop(grant_id=grant_id)
            continue
        try:
            outcome = check_grant(grant, shared=shared)
        except AwsError as exc:  # a call outside a check's own guard
            outcome = Outcome([failed_call("aws", "AWS", exc)])
        except Exception:  # noqa: BLE001 - a bug: this grant only, not its batch
            log.exception("readiness check of grant %s failed", grant_id)
            outcome = Outcome([_unfinished()])
        wait = retry_in(grant, outcome, attempt=attempt) if retry else 0.0
        if wait:
            log.info(
                "grant %s not ready yet, IAM may be propagating: %ss", grant_id, wait
            )
            waits[grant_id] = wait
            continue
        readiness_service.readiness_record(
            grant_id=grant_id,
            checks=[c.as_dict() for c in outcome.checks],
            ready=outcome.ready,
        )
    # The soonest: a grant looked at again early is only waited for again.
    return min(waits.values(), default=0.0), sorted(waits)


def _unfinished() -> Check:
    """What a grant shows when its check broke off on an error of opsgate's
    own (logged): Not ready, not "checking" for ever, and the others checked
    with it are recorded as usual."""
    return Check(
        "opsgate",
        "The check",
        False,
        "Could not finish the check: opsgate hit an error (logged for the admins).",
        fix="Press Check again; if it fails again, ask an opsgate admin to look "
        "at the worker's log.",
    )


def grant_readiness_run(
    *, grant_id: int, attempt: int = 0, retry: bool = True
) -> float:
    """grants_readiness_run for one grant: the seconds until the task should
    try again, 0 when recorded."""
    wait, _ = grants_readiness_run(grant_ids=[grant_id], attempt=attempt, retry=retry)
    return wait

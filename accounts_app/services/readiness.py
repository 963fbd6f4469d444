"""Readiness of grants (issue 25): ask the worker to check a grant, record
what it found, and tell the person.

The checks themselves read AWS (provisioning/readiness/); this module only
keeps the state: unknown → checking → ready or not ready. A grant that ended,
or whose window has not started, is not checked.
"""

from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts_app import notifications
from accounts_app.audit import audit_record
from accounts_app.models import AccessRequest, ReadinessState, RequestStatus

# Sent after commit with grant_ids=[…]; provisioning publishes one check task
# for them (provisioning/receivers.py), so accounts_app never imports the worker.
readiness_requested = Signal()


def enabled() -> bool:
    return bool(settings.OPSGATE["READINESS_CHECKS"])


def is_checkable(grant: AccessRequest) -> bool:
    """An active grant whose trust lists the person (a scheduled grant that
    has not started, an ended one or one still provisioning is not)."""
    return grant.is_active_grant and grant.provisioned_at is not None


def checkable_grant(grant_id: int) -> AccessRequest | None:
    grant = (
        AccessRequest.objects.select_related(
            "role__project", "role__account", "requester__account", "requester__user"
        )
        .filter(pk=grant_id)
        .first()
    )
    return grant if grant is not None and is_checkable(grant) else None


def _send(grant_ids: list[int]) -> None:
    readiness_requested.send(sender=AccessRequest, grant_ids=grant_ids)


def readiness_check_request(*, grant_ids: list[int]) -> list[int]:
    """The worker checks these grants once the current transaction commits;
    those not checkable are skipped. Returns the ids asked for."""
    if not enabled() or not grant_ids:
        return []
    now = timezone.now()
    asked = list(
        AccessRequest.active_grants(now)
        .filter(pk__in=grant_ids, provisioned_at__isnull=False)
        .values_list("pk", flat=True)
    )
    AccessRequest.objects.filter(pk__in=asked).update(
        readiness_state=ReadinessState.CHECKING
    )
    if asked:
        transaction.on_commit(partial(_send, asked))
    return asked


def grants_provisioned(*, grant_ids: list[int], at) -> None:
    """The worker wrote these active grants into their role's trust, under
    the role's lock and in its transaction: record when, and, with checks on,
    mark them checking in the same UPDATE and ask for one check of them all
    once it commits (readiness_check_request's re-read would find the same
    grants; the role is read once for them)."""
    checking = {"readiness_state": ReadinessState.CHECKING} if enabled() else {}
    AccessRequest.objects.filter(pk__in=grant_ids, provisioned_at__isnull=True).update(
        provisioned_at=at, **checking
    )
    if checking and grant_ids:
        transaction.on_commit(partial(_send, list(grant_ids)))


def grant_check_request(*, grant: AccessRequest, actor: Any) -> AccessRequest:
    """ "Check again": the grant's holder asks for a new look."""
    if not enabled():
        raise ValidationError("Readiness checks are turned off on this opsgate.")
    if grant.status != RequestStatus.APPROVED or not grant.is_active_grant:
        if grant.is_scheduled:
            raise ValidationError(
                "This grant has not started yet: it is checked when it starts."
            )
        raise ValidationError("This grant is not active: there is nothing to check.")
    if grant.provisioned_at is None:
        raise ValidationError(
            "opsgate is still adding you to the role's trust; the check runs "
            "when it is done."
        )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="grant.check",
            obj=grant,
            before={"readiness": grant.readiness_state},
            project=grant.role.project,
        )
        readiness_check_request(grant_ids=[grant.pk])
    grant.refresh_from_db()
    return grant


def outcome_key(*, ready: bool, checks: list[dict]) -> str:
    """What an e-mail said: "ready", or the failed checks' keys."""
    if ready:
        return "ready"
    return "not_ready:" + ",".join(sorted(c["key"] for c in checks if not c["ok"]))


def readiness_record(*, grant_id: int, checks: list[dict], ready: bool) -> bool:
    """Record a finished check; the person is e-mailed when the outcome
    differs from the last one they were told (so a missing MFA device is
    e-mailed once, however often the check runs). Returns False when the
    grant ended meanwhile (nothing recorded)."""
    now = timezone.now()
    with transaction.atomic():
        grant = AccessRequest.objects.select_for_update().filter(pk=grant_id).first()
        if grant is None or not is_checkable(grant):
            return False
        grant.readiness_state = (
            ReadinessState.READY if ready else ReadinessState.NOT_READY
        )
        grant.readiness_checks = checks
        grant.readiness_checked_at = now
        if ready and grant.ready_at is None:
            grant.ready_at = now
        key = outcome_key(ready=ready, checks=checks)
        fields = [
            "readiness_state",
            "readiness_checks",
            "readiness_checked_at",
            "ready_at",
        ]
        if key != grant.readiness_mailed:
            grant.readiness_mailed = key[:300]
            fields.append("readiness_mailed")
            notifications.on_commit(notifications.grant_readiness, grant.pk)
        grant.save(update_fields=fields)
    return True


def readiness_stop(*, grant_id: int) -> None:
    """A check found the grant ended (or not started): it is not checked,
    and no longer shown as being checked."""
    AccessRequest.objects.filter(
        pk=grant_id, readiness_state=ReadinessState.CHECKING
    ).update(readiness_state=ReadinessState.UNKNOWN)


def time_to_ready(grant: AccessRequest) -> timedelta | None:
    """From approval (or the scheduled start) to Ready."""
    if grant.ready_at is None:
        return None
    start = grant.decided_at or grant.created_at
    if grant.starts_at and grant.starts_at > start:
        start = grant.starts_at
    return max(grant.ready_at - start, timedelta(0))


def summary(grant: AccessRequest) -> dict:
    """What every surface shows (My access, the API, the CLI): the state, when
    it was checked, the time from approval to Ready, and each check with what
    to do. A grant that is not active (ended, scheduled) is never Ready."""
    state = grant.readiness_state
    if not is_checkable(grant) and state != ReadinessState.UNKNOWN:
        state = ReadinessState.UNKNOWN
    took = time_to_ready(grant) if state == ReadinessState.READY else None
    checks = list(grant.readiness_checks or []) if state != "unknown" else []
    return {
        "state": state,
        "label": ReadinessState(state).label,
        "checked_at": grant.readiness_checked_at,
        "ready_at": grant.ready_at if state == ReadinessState.READY else None,
        "seconds_to_ready": int(took.total_seconds()) if took is not None else None,
        "checks": checks,
        "failed": [c for c in checks if not c.get("ok")],
    }

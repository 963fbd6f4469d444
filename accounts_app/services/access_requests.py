"""Access requests and grants: create and import here; approve (or
extend) and reject in request_decisions; cancel, revoke and the one way every
end of a request is written (request_end) in request_ending. Callers use this
module for all of them."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app import approval_rules, notifications
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services.request_decisions import (
    _auto_approved,
    _rules_snapshot,
    _scheduled_refusal,
    access_request_approve,
    access_request_reject,
)
from accounts_app.services.request_ending import (
    access_request_cancel,
    access_request_revoke,
    request_end,
)
from accounts_app.validation import field_error

__all__ = [
    "IMPORT_REASON",
    "access_request_approve",
    "access_request_cancel",
    "access_request_create",
    "access_request_reject",
    "access_request_revoke",
    "can_approve",
    "grant_import",
    "request_end",
]


def can_approve(user: Any, project: Project) -> bool:
    return bool(
        user and user.is_active and project.approvers.filter(pk=user.pk).exists()
    )


def access_request_create(
    *,
    requester: IamUser,
    role: OperationRole,
    reason: str,
    duration_hours: int | None,
    actor: Any,
    ticket: str = "",
    starts_at: datetime | None = None,
) -> AccessRequest:
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", "Say why you need this access.")
    if len(reason) > 2000:
        raise field_error("reason", "At most 2,000 characters.")
    project = role.project
    if duration_hours is None:
        if not project.allow_permanent:
            raise field_error(
                "duration_hours",
                f"{project.name} does not allow permanent access: pick a duration.",
            )
    elif duration_hours not in project.durations:
        allowed = ", ".join(f"{h} h" for h in project.durations)
        raise field_error("duration_hours", f"Pick one of {allowed}.")
    try:
        ticket = approval_rules.ticket_clean(project, ticket)
    except ValidationError as exc:
        raise field_error("ticket", exc.messages[0]) from None
    try:
        approval_rules.schedule_check(project, starts_at, duration_hours)
    except ValidationError as exc:
        raise field_error("starts_at", exc.messages[0]) from None
    if requester.state != IamUserState.ACTIVE:
        raise ValidationError("This person has been offboarded.")
    if requester.account_id != role.account.identity.pk:
        identity = role.account.identity
        raise field_error(
            "role",
            f"This role in {role.account} trusts the IAM users of {identity}; "
            "you have none there. Ask an admin to add you.",
        )
    open_request = AccessRequest.objects.filter(
        requester=requester, role=role, status=RequestStatus.PENDING
    ).exists()
    if open_request:
        raise field_error("role", "You already have a pending request for this role.")
    window = AccessRequest.objects.filter(
        requester=requester,
        role=role,
        status=RequestStatus.APPROVED,
        starts_at__gt=timezone.now(),
    ).first()
    if window is not None:
        raise field_error("role", _scheduled_refusal(window, "You have"))
    try:
        with transaction.atomic():
            req = AccessRequest.objects.create(
                requester=requester,
                role=role,
                reason=reason,
                duration_hours=duration_hours,
                created_by=actor,
                ticket=ticket,
                approvals_required=approval_rules.quorum(role),
                starts_at=starts_at,
            )
            audit_record(
                actor=actor,
                action="request.create",
                obj=req,
                project=project,
                after={
                    "role": role.role_name,
                    "reason": reason,
                    "duration_hours": duration_hours,
                    **_rules_snapshot(req),
                },
            )
            if not _auto_approved(req, actor):
                notifications.on_commit(notifications.request_created, req.pk)
    except IntegrityError:
        raise field_error(
            "role", "You already have a pending request for this role."
        ) from None
    return req


IMPORT_REASON = "Imported from the OperationUsersStack parameter file"


def grant_import(*, requester: IamUser, role: OperationRole, now) -> AccessRequest:
    """A permanent grant from the CDK stack's parameter file (DESIGN §6): the
    stack's trust listed the person, so it needs no approval. The importer
    checks the role's trust size and asks for its sync once per role."""
    grant = AccessRequest.objects.create(
        requester=requester,
        role=role,
        reason=IMPORT_REASON,
        duration_hours=None,
        status=RequestStatus.APPROVED,
        decided_at=now,
        created_at=now,
        decision_comment="imported",
    )
    audit_record(
        actor="import",
        action="request.import",
        obj=grant,
        project=role.project,
        after={"status": grant.status, "expires_at": None},
    )
    return grant

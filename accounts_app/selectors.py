"""Reads for the pages: what a request looks like to people, and how to
connect with a grant."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, prefetch_related_objects

from accounts_app import instructions
from accounts_app.models import (
    AccessRequest,
    Approval,
    AutoApprovalRule,
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from provisioning import policies


@dataclass(frozen=True)
class Approver:
    username: str
    user_id: int
    is_active: bool


def approvers_of(relation, ids) -> dict[int, list[Approver]]:
    """The approvers of each project or role (`relation`: Project.approvers
    or OperationRole.approvers), in the order they were added, in one query
    of plain values: model instances and a related manager for each cost
    more than the rest of a list page."""
    found = {pk: [] for pk in ids}
    if not found:
        return found
    owner = relation.field.m2m_field_name() + "_id"
    links = relation.through.objects.filter(**{f"{owner}__in": list(found)})
    username = "user__" + get_user_model().USERNAME_FIELD
    rows = links.order_by("pk").values_list(
        owner, username, "user_id", "user__is_active"
    )
    for owner_id, name, user_id, is_active in rows:
        found[owner_id].append(Approver(name, user_id, is_active))
    return found


@dataclass(frozen=True)
class Display:
    key: str  # a badge class: pending, provisioning, active, error, rejected, …
    label: str
    detail: str = ""

    @property
    def is_final(self) -> bool:
        return self.key not in {"pending", "provisioning"}


def request_display(req: AccessRequest) -> Display:
    """The status people see: an approved request is "provisioning" until the
    role's trust lists the requester, then "active" (or the worker's error).
    A grant whose role is known to be missing in AWS is "being restored"."""
    if req.status == RequestStatus.APPROVED:
        if req.is_scheduled:
            return Display("scheduled", "Scheduled", scheduled_window(req))
        if not req.is_active_grant:
            return Display("expired", "Expired")
        if req.provisioned_at and req.role.missing_since:
            return _being_restored(req.role)
        if req.provisioned_at:
            return Display("active", "Active")
        role = req.role
        if role.error_is_permanent:
            return Display(
                "error",
                "Error",
                f"{role.last_error} An admin has been shown this error and can "
                "retry once it is fixed.",
            )
        return Display("provisioning", "Provisioning", role.last_error)
    if req.status == RequestStatus.PENDING:
        parts = []
        if req.approvals_required > 1:
            by = [a.approver.get_username() for a in req.approvals.all()]
            count = f"{len(by)} of {req.approvals_required} approvals"
            parts.append(f"{count}, by {', '.join(by)}" if by else count)
        if req.starts_at:
            parts.append(f"scheduled {scheduled_window(req)}")
        return Display("pending", "Waiting for approval", "; ".join(parts))
    if req.status == RequestStatus.REVOKED and ended_by_requester(req):
        return Display("done", "Ended")
    return Display(req.status, req.get_status_display())


def request_details_load(requests: list[AccessRequest]) -> None:
    """What request_display and request_note read beyond a request, its role
    and its requester: who decided and who ended it, its auto-approval rule,
    a pending request's approvals so far. A query each, and only when a
    request has them: joined to the requests (select_related), these
    nullable links cost PostgreSQL more to plan than the query to run."""
    people = {r.decided_by_id for r in requests} | {r.ended_by_id for r in requests}
    people.discard(None)
    users = get_user_model().objects.in_bulk(people) if people else {}
    rule_ids = {r.auto_rule_id for r in requests if r.auto_rule_id}
    rules = AutoApprovalRule.objects.in_bulk(rule_ids) if rule_ids else {}
    for req in requests:
        req.decided_by = users.get(req.decided_by_id)
        req.ended_by = users.get(req.ended_by_id)
        req.auto_rule = rules.get(req.auto_rule_id)
    quorum = [
        r
        for r in requests
        if r.status == RequestStatus.PENDING and r.approvals_required > 1
    ]
    prefetch_related_objects(
        quorum, Prefetch("approvals", Approval.objects.select_related("approver"))
    )


def ended_by_requester(req: AccessRequest) -> bool:
    return bool(req.ended_by_id) and req.ended_by_id == req.requester.user_id


def _name(user, viewer) -> str:
    if user is None:
        return "opsgate"
    return "you" if viewer is not None and user.pk == viewer.pk else user.get_username()


def _with(text: str, comment: str) -> str:
    return f"{text}: “{comment}”" if comment else text + "."


def request_note(req: AccessRequest, viewer=None) -> str:
    """Who decided or ended a request and why, in words for `viewer`
    ("You ended it.", "Revoked by bob: “…”", "Expired.")."""
    status = req.status
    if status == RequestStatus.PENDING:
        return ""
    decided = req.decided_by
    if status == RequestStatus.REJECTED:
        return _with(f"Rejected by {_name(decided, viewer)}", req.decision_comment)
    if status == RequestStatus.APPROVED:
        if req.break_glass:
            return _with("Break-glass, self-activated", "")
        if req.auto_approved:
            rule = req.auto_rule.name if req.auto_rule_id else "a rule"
            return _with(f"Auto-approved by rule {rule}", "")
        if decided is None:
            return _with("Imported", "")
        return _with(f"Approved by {_name(decided, viewer)}", req.decision_comment)
    ended = req.ended_by if req.ended_by_id else None
    by_viewer = ended is not None and viewer is not None and ended.pk == viewer.pk
    if status == RequestStatus.EXPIRED:
        return _with("Expired", req.end_comment)
    if status == RequestStatus.CANCELLED:
        if by_viewer:
            return _with("You cancelled it", req.end_comment)
        return _with(f"Cancelled by {_name(ended, viewer)}", req.end_comment)
    if ended_by_requester(req):
        who = "You" if by_viewer else req.requester.name
        return _with(f"{who} ended it", "")
    if by_viewer:
        return _with("You revoked it", req.end_comment)
    return _with(f"Revoked by {_name(ended, viewer)}", req.end_comment)


def scheduled_window(req: AccessRequest) -> str:
    """ "from 5 Dec 02:00 to 5 Dec 06:00 UTC" for a request with a start."""
    if req.starts_at is None:
        return ""
    start = f"{req.starts_at:%-d %b %H:%M}"
    end = req.expires_at or (
        req.starts_at + req.duration if req.duration_hours else None
    )
    until = f" to {end:%-d %b %H:%M}" if end else ", no end"
    return f"from {start}{until} UTC"


def _being_restored(role: OperationRole) -> Display:
    """The role, or a policy it needs, was found missing in AWS (deleted
    behind opsgate's back, the account wiped): the grant does not work now."""
    detail = "The role was found missing in AWS."
    if role.error_is_permanent:
        return Display(
            "error",
            "Error",
            f"{detail} {role.last_error} An admin has been shown this error and "
            "can retry once it is fixed.",
        )
    worked_on = role.applied_version < role.desired_version
    if not (worked_on or settings.OPSGATE["RECONCILE_REPAIR"]):
        return Display("error", "Unavailable", f"{detail} An admin has been told.")
    return Display(
        "provisioning",
        "Being restored",
        f"{detail} opsgate is creating it again. {role.last_error}".strip(),
    )


def grant_connection(
    grant: AccessRequest, *, instance_id: str = ""
) -> instructions.Connection:
    role, account = grant.role, grant.role.account
    path = settings.OPSGATE["IAM_PATH"]
    arn = role.arn or policies.role_arn(
        account_id=account.account_id,
        path=path,
        name=role.role_name,
        partition=account.partition,
    )
    return instructions.connection(
        account_id=account.account_id,
        partition=account.partition,
        path=path,
        role_name=role.role_name,
        role_arn=arn,
        iam_user_name=grant.requester.name,
        display_name=f"{role.project.name} as {role.os_user}",
        region=account.session_regions[0],
        instance_id=instance_id,
        identity_account_id=grant.requester.account.account_id,
    )


def person_for_role(user, role: OperationRole) -> IamUser | None:
    """The person's active IAM user in the identity account the role's
    account trusts (the one a request for that role is made as)."""
    return (
        IamUser.objects.filter(
            user=user, account=role.account.identity, state=IamUserState.ACTIVE
        )
        .select_related("account")
        .first()
    )

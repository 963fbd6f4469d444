"""The approval rules of a project or role (issue 13), read in one place by
the services, the pages and the worker's re-check: who may decide a role's
requests, how many distinct approvals a request needs, and the ticket a
project may require."""

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import re2
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AutoApprovalRule,
    OperationRole,
    Project,
)

MAX_QUORUM = 3
TICKET_MAX_LENGTH = 100


def approvers_q(role: OperationRole) -> Q:
    """People (a filter on the user model) who decide `role`'s requests: its
    own approvers, plus the project's unless the role replaces them."""
    q = Q(role_approver_of=role)
    if not role.approvers_replace_project:
        q |= Q(approver_of=role.project_id)
    return q


def role_approvers(role: OperationRole):
    return get_user_model().objects.filter(approvers_q(role), is_active=True).distinct()


def role_approver_ids(role: OperationRole) -> set[int]:
    return set(role_approvers(role).values_list("pk", flat=True))


def can_decide(user: Any, role: OperationRole) -> bool:
    if not (user and user.is_active):
        return False
    return role_approvers(role).filter(pk=user.pk).exists()


def decides(user: Any) -> Q:
    """The roles (a filter on OperationRole) whose requests `user` decides:
    the roles they approve, and those of the projects they approve unless the
    role replaces the project's approvers. Each side reads one approvers table
    by user (its index): no join to a many-valued relation, no DISTINCT."""
    own = OperationRole.approvers.through.objects.filter(user_id=user.pk).values(
        "operationrole_id"
    )
    projects = Project.approvers.through.objects.filter(user_id=user.pk).values(
        "project_id"
    )
    return Q(pk__in=own) | Q(approvers_replace_project=False, project_id__in=projects)


def decidable_roles(user: Any):
    """The ids of the roles `user` decides (decides), as a subquery, so a
    caller filters on `role_id IN (…)`."""
    return OperationRole.objects.filter(decides(user)).values("pk")


def decidable_by(user: Any, role_ids: list[int] | None = None) -> Q:
    """Access requests (a filter on AccessRequest) that `user` may decide: one
    row per request, no DISTINCT needed. `role_ids`: the ids of those roles
    when the caller has them (a page filtering several times on the few ids
    lets the planner match them on the indexes by role, where it cannot size a
    subquery)."""
    return Q(role_id__in=decidable_roles(user) if role_ids is None else role_ids)


@dataclass(frozen=True)
class Approved:
    """What `user` approves, read once (approved_by): the projects they
    approve, and the roles they approve with those roles' projects. The same
    rule as `decides`, answered from these ids."""

    projects: frozenset[int]
    roles: frozenset[int]
    role_projects: frozenset[int]

    @property
    def project_ids(self) -> frozenset[int]:
        """The projects they approve, or one of whose roles they approve."""
        return self.projects | self.role_projects

    def decides(self, role: OperationRole) -> bool:
        """decides: the roles they approve, and those of the projects they
        approve unless the role replaces the project's approvers."""
        return role.pk in self.roles or (
            not role.approvers_replace_project and role.project_id in self.projects
        )


def approved_by(user: Any) -> Approved:
    """Approved for `user`, in one statement on the two approvers tables
    (by user, their indexes; no ORM compiling, which costs a page more than
    PostgreSQL's two index lookups)."""
    projects = Project.approvers.through._meta.db_table
    roles = OperationRole.approvers.through._meta.db_table
    role_table = OperationRole._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT project_id, NULL FROM {projects} WHERE user_id = %s "
            f"UNION ALL SELECT r.project_id, r.id FROM {roles} a "
            f"JOIN {role_table} r ON r.id = a.operationrole_id WHERE a.user_id = %s",
            [user.pk, user.pk],
        )
        rows = cursor.fetchall()
    return Approved(
        projects=frozenset(project for project, role in rows if role is None),
        roles=frozenset(role for _, role in rows if role is not None),
        role_projects=frozenset(project for project, role in rows if role is not None),
    )


def is_approver(user: Any) -> bool:
    """Approves a project or a role (one query)."""
    return (
        get_user_model()
        .objects.filter(pk=user.pk)
        .filter(Q(approver_of__isnull=False) | Q(role_approver_of__isnull=False))
        .exists()
    )


def quorum(role: OperationRole) -> int:
    return role.approvals_required or role.project.approvals_required


def valid_approvals(
    req: AccessRequest, allowed: set[int] | None = None, given: list | None = None
) -> list:
    """The request's approvals that still count: given by someone who may
    still decide it (active, still an approver), never by the requester.
    `allowed`: role_approver_ids(req.role), when the caller read it; `given`:
    all of the request's approvals (with their approver), when it has them."""
    if allowed is None:
        allowed = role_approver_ids(req.role)
    if given is None:
        given = list(req.approvals.select_related("approver"))
    return [
        a
        for a in given
        if a.approver_id in allowed and a.approver_id != req.requester.user_id
    ]


# --- Validation of the settings ---------------------------------------------


def validate_quorum(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError("A number of approvals from 1 to 3.") from None
    if not 1 <= number <= MAX_QUORUM:
        raise ValidationError(f"Between 1 and {MAX_QUORUM} approvals (not {number}).")
    return number


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is a form error, not a log line
    options.max_mem = 1 << 20  # one admin pattern: 1 MiB of automaton at most
    return options


@lru_cache(maxsize=256)
def ticket_regex(pattern: str):
    """An admin's ticket pattern compiled by RE2 (issue 21): linear-time
    matching, so no pattern can hold a worker (Python's `re` took 31 s on
    `^(a+)+$`). Raises re2.error for what RE2 cannot run (backreferences,
    lookarounds)."""
    return re2.compile(pattern, _re2_options())


def validate_ticket_pattern(pattern: str) -> None:
    if len(pattern) > 200:
        raise ValidationError("At most 200 characters.")
    try:
        ticket_regex(pattern)
    except re2.error as exc:
        why = exc.args[0] if exc.args else exc
        if isinstance(why, bytes):
            why = why.decode(errors="replace")
        raise ValidationError(
            f"Not a valid regular expression: {why}. Ticket formats run on RE2: "
            "no backreferences (\\1) and no lookarounds ((?=…), (?!…))."
        ) from None


def validate_ticket_url_template(template: str) -> None:
    if not template:
        return
    if len(template) > 500:
        raise ValidationError("At most 500 characters.")
    if not re.match(r"https?://[^\s/{}]+", template, re.ASCII):
        raise ValidationError(
            "Start with https:// and a host name, e.g. "
            "https://tracker.example.com/browse/{ticket}."
        )
    if template.count("{ticket}") != 1:
        raise ValidationError("Put {ticket} exactly once where the ticket goes.")
    if re.search(r"\s", template):
        raise ValidationError("No spaces in a link.")


# --- Tickets on requests -------------------------------------------------------


def ticket_clean(project: Project, ticket: str) -> str:
    """The ticket a request names: required and matched against the project's
    pattern when it has one; optional free text (bounded) otherwise."""
    ticket = (ticket or "").strip()
    if len(ticket) > TICKET_MAX_LENGTH:
        raise ValidationError(f"At most {TICKET_MAX_LENGTH} characters.")
    if not project.ticket_pattern:
        return ticket
    if not ticket:
        raise ValidationError(f"{project.name} requires a ticket reference.")
    try:
        matched = ticket_regex(project.ticket_pattern).fullmatch(ticket)
    except re2.error:
        # Saved before RE2 (issue 21) and not RE2 syntax: refuse, never fall
        # back to a backtracking engine.
        raise ValidationError(
            f"{project.name}'s ticket format cannot be checked; ask an admin to "
            "fix it on the project's Rules page."
        ) from None
    if not matched:
        raise ValidationError(
            f"{ticket!r} does not match {project.name}'s ticket format "
            f"{project.ticket_pattern}."
        )
    return ticket


# --- Scheduled access -----------------------------------------------------------


def schedule_check(project: Project, starts_at, duration_hours) -> None:
    """A start is in the future and within the project's horizon."""
    if starts_at is None:
        return
    if timezone.is_naive(starts_at):
        raise ValidationError("Give the start with its time zone.")
    now = timezone.now()
    if starts_at <= now:
        raise ValidationError("The start is in the past: pick a later time.")
    horizon = now + timedelta(days=project.schedule_horizon_days)
    if starts_at > horizon:
        raise ValidationError(
            f"{project.name} takes requests at most "
            f"{project.schedule_horizon_days} days ahead (until "
            f"{horizon:%Y-%m-%d %H:%M} UTC)."
        )
    if duration_hours is None:
        raise ValidationError("A scheduled request needs a duration.")


# --- Auto-approval ---------------------------------------------------------------


def _rules_allowing(req: AccessRequest):
    """Rules that may approve `req` (issue 20, item 13): a rule is its
    author's approval given ahead, so it lists the requester, allows the
    duration, was made by someone else who is still active, and the request
    needs one approval only (a rule never makes a quorum). Never a
    permanent or scheduled request."""
    if req.duration_hours is None or req.starts_at is not None:
        return AutoApprovalRule.objects.none()
    if req.approvals_required > 1 or quorum(req.role) > 1:
        return AutoApprovalRule.objects.none()
    return AutoApprovalRule.objects.filter(
        role_id=req.role_id,
        people=req.requester.user_id,
        max_hours__gte=req.duration_hours,
        created_by__is_active=True,
    ).exclude(created_by=req.requester.user_id)


def auto_rule_for(req: AccessRequest) -> AutoApprovalRule | None:
    """The first rule (by name) that may approve the request at once."""
    return _rules_allowing(req).order_by("name").first()


def auto_rule_still_allows(req: AccessRequest) -> bool:
    """The worker's re-check before the grant reaches AWS: its rule still
    may approve it and still lists the person, active."""
    rule = req.auto_rule
    return bool(
        rule
        and _rules_allowing(req).filter(pk=rule.pk).exists()
        and rule.people.filter(pk=req.requester.user_id, is_active=True).exists()
    )

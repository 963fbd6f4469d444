"""Setting the approval rules of a project or a role (issue 13): quorum,
tickets, approvers per role. Each change is validated whole before anything
is written, and audited with its before and after."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts_app import approval_rules, chat
from accounts_app.audit import audit_record
from accounts_app.models import AutoApprovalRule, OperationRole, Project
from accounts_app.services.projects import MAX_APPROVERS
from accounts_app.validation import field_error


def _project_rules(project: Project) -> dict:
    return {
        "approvals_required": project.approvals_required,
        "ticket_pattern": project.ticket_pattern,
        "ticket_url_template": project.ticket_url_template,
        "schedule_horizon_days": project.schedule_horizon_days,
    }


def _checked(field: str, check, value):
    try:
        return check(value)
    except ValidationError as exc:
        raise field_error(field, exc.messages[0]) from None


def project_rules_set(
    *,
    actor: Any,
    project: Project,
    approvals_required: Any = 1,
    ticket_pattern: str = "",
    ticket_url_template: str = "",
    schedule_horizon_days: Any = 30,
) -> Project:
    quorum = _checked(
        "approvals_required", approval_rules.validate_quorum, approvals_required
    )
    ticket_pattern = (ticket_pattern or "").strip()
    ticket_url_template = (ticket_url_template or "").strip()
    _checked("ticket_pattern", approval_rules.validate_ticket_pattern, ticket_pattern)
    _checked(
        "ticket_url_template",
        approval_rules.validate_ticket_url_template,
        ticket_url_template,
    )
    try:
        horizon = int(schedule_horizon_days)
    except (TypeError, ValueError):
        raise field_error("schedule_horizon_days", "Whole days, 1 to 365.") from None
    if not 1 <= horizon <= 365:
        raise field_error("schedule_horizon_days", f"1 to 365 days (not {horizon}).")
    if ticket_url_template and not ticket_pattern:
        raise field_error(
            "ticket_pattern", "Give the ticket format that the link is for."
        )
    with transaction.atomic():
        before = _project_rules(Project.objects.select_for_update().get(pk=project.pk))
        project.approvals_required = quorum
        project.ticket_pattern = ticket_pattern
        project.ticket_url_template = ticket_url_template
        project.schedule_horizon_days = horizon
        project.save(
            update_fields=[
                "approvals_required",
                "ticket_pattern",
                "ticket_url_template",
                "schedule_horizon_days",
            ]
        )
        audit_record(
            actor=actor,
            action="project.rules",
            obj=project,
            project=project,
            before=before,
            after=_project_rules(project),
        )
    return project


def _role_rules(role: OperationRole) -> dict:
    return {
        "approvals_required": role.approvals_required,
        "approvers": sorted(a.get_username() for a in role.approvers.all()),
        "approvers_replace_project": role.approvers_replace_project,
    }


def role_rules_set(
    *,
    actor: Any,
    role: OperationRole,
    approvers: list = (),
    approvers_replace_project: bool = False,
    approvals_required: Any = None,
) -> OperationRole:
    """The role's own approvers (in addition to the project's, or instead of
    them) and its quorum (None: the project's)."""
    quorum = None
    if approvals_required not in (None, ""):
        quorum = _checked(
            "approvals_required", approval_rules.validate_quorum, approvals_required
        )
    approvers = list({a.pk: a for a in approvers}.values())
    if len(approvers) > MAX_APPROVERS:
        raise field_error("approvers", f"At most {MAX_APPROVERS} approvers per role.")
    if approvers_replace_project and not approvers:
        raise field_error(
            "approvers",
            "Name the role's approvers, or keep the project's: otherwise nobody "
            "could decide its requests.",
        )
    inactive = [a.get_username() for a in approvers if not a.is_active]
    if inactive:
        raise field_error("approvers", f"Not active: {', '.join(inactive)}.")
    with transaction.atomic():
        before = _role_rules(
            OperationRole.objects.select_for_update(of=("self",)).get(pk=role.pk)
        )
        role.approvals_required = quorum
        role.approvers_replace_project = approvers_replace_project
        role.save(update_fields=["approvals_required", "approvers_replace_project"])
        role.approvers.set(approvers)
        audit_record(
            actor=actor,
            action="role.rules",
            obj=role,
            project=role.project,
            before=before,
            after=_role_rules(role),
        )
    return role


def project_webhooks_set(
    *,
    actor: Any,
    project: Project,
    slack_webhook_url: str = "",
    teams_webhook_url: str = "",
    remove_slack: bool = False,
    remove_teams: bool = False,
) -> Project:
    """Set or remove a project's chat webhooks. The URLs are secrets: an
    empty field keeps the current one, and the audit never records them."""
    new = {
        "slack": (slack_webhook_url or "").strip(),
        "teams": (teams_webhook_url or "").strip(),
    }
    for channel, url in new.items():
        _checked(f"{channel}_webhook_url", chat.validate_webhook_url, url)
    remove = {"slack": remove_slack, "teams": remove_teams}
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        changes = {}
        for channel in chat.CHANNELS:
            field = f"{channel}_webhook_url"
            if remove[channel] and getattr(locked, field):
                setattr(project, field, "")
                changes[channel] = "removed"
            elif new[channel]:
                setattr(project, field, new[channel])
                changes[channel] = "set"
            else:
                setattr(project, field, getattr(locked, field))
        if not changes:
            return project
        project.save(update_fields=["slack_webhook_url", "teams_webhook_url"])
        audit_record(
            actor=actor,
            action="project.webhooks",
            obj=project,
            project=project,
            after=changes,
        )
    return project


def auto_rule_add(
    *, actor: Any, role: OperationRole, name: str, people: list, max_hours: Any
) -> AutoApprovalRule:
    """Requests of `people` for `role` for at most `max_hours` become grants
    at once (typically read-only roles). A rule is its author's approval
    given ahead (issue 20, item 13): the author may not list themself, the
    hours stay within the project's longest duration, and a role that needs
    more than one approval gets no rule (one person's approval is not a
    quorum). approval_rules.auto_rule_for checks the same when it applies."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise field_error("name", "Name the rule (at most 100 characters).")
    if AutoApprovalRule.objects.filter(role=role, name=name).exists():
        raise field_error("name", f"{role.role_name} has a rule named {name!r}.")
    try:
        hours = int(max_hours)
    except (TypeError, ValueError):
        raise field_error("max_hours", "Whole hours, 1 to 8784.") from None
    longest = max(role.project.durations)
    if not 1 <= hours <= longest:
        raise field_error(
            "max_hours",
            f"1 to {longest} h, the longest duration {role.project.name} "
            f"allows (not {hours}).",
        )
    people = list({p.pk: p for p in people}.values())
    if not people:
        raise field_error("people", "List the people the rule approves.")
    if len(people) > MAX_APPROVERS:
        raise field_error("people", f"At most {MAX_APPROVERS} people per rule.")
    if getattr(actor, "pk", None) is None:
        raise PermissionDenied("A rule is someone's approval: name who adds it.")
    if any(p.pk == actor.pk for p in people):
        raise field_error(
            "people",
            "You cannot list yourself: a rule is your approval, and nobody "
            "approves their own access. Ask another admin.",
        )
    quorum = approval_rules.quorum(role)
    if quorum > 1:
        raise field_error(
            "people",
            f"{role.role_name} needs {quorum} approvals per request: a rule is "
            "one person's approval, so it cannot approve alone.",
        )
    with transaction.atomic():
        rule = AutoApprovalRule.objects.create(
            role=role, name=name, max_hours=hours, created_by=actor
        )
        rule.people.set(people)
        audit_record(
            actor=actor,
            action="role.auto_rule_add",
            obj=role,
            project=role.project,
            after={
                "rule": name,
                "people": sorted(p.get_username() for p in people),
                "max_hours": hours,
            },
        )
    return rule


def auto_rule_remove(*, actor: Any, rule: AutoApprovalRule) -> None:
    """Grants it made stay (the worker re-checks those not provisioned yet)."""
    with transaction.atomic():
        role = rule.role
        audit_record(
            actor=actor,
            action="role.auto_rule_remove",
            obj=role,
            project=role.project,
            before={"rule": rule.name, "max_hours": rule.max_hours},
        )
        rule.delete()

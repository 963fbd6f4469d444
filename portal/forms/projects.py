"""Admin forms about projects and their operation roles: the project, its
rules, break-glass and webhook settings, auto-approval rules, a role, the
project list's filters, and how approvers are named (by e-mail or user name)."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower

from accounts_app import validation
from accounts_app.models import AwsAccount, Project
from accounts_app.services.projects import (
    DURATIONS_RANGE,
    MAX_APPROVERS,
    MAX_HOURS,
    MIN_HOURS,
)
from accounts_app.services.roles import MAX_PRINCIPALS_TEXT, principals_too_long
from portal.forms.base import Form


def approvers_by_name(names: list[str]) -> dict:
    """Active people with an IAM user, by lowercased e-mail and user name,
    for every one of `names` that matches (one query however many)."""
    wanted = [n.lower() for n in names]
    users = (
        get_user_model()
        .objects.filter(is_active=True, iam_users__isnull=False)
        .annotate(email_key=Lower("email"), name_key=Lower("username"))
        .filter(Q(email_key__in=wanted) | Q(name_key__in=wanted))
        .distinct()
        .order_by("pk")
    )
    found: dict = {}
    for user in users:
        for key in (user.email.lower(), user.username.lower()):
            found.setdefault(key, user)
    return found


def _shown(name: str, limit: int = 80) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def people_named(text: str) -> list:
    """People by e-mail or user name, found in one query: a text field,
    because a list of every person to tick does not scale past a few
    hundred people."""
    names = list(
        {n.strip().lower(): n.strip() for n in text.split(",") if n.strip()}.values()
    )
    if len(names) > MAX_APPROVERS:
        raise ValidationError(
            f"At most {MAX_APPROVERS} approvers per project; this list names "
            f"{len(names):,}. Choose the people who decide, not everyone."
        )
    found = approvers_by_name(names)
    unknown = [_shown(n) for n in names if n.lower() not in found]
    if unknown:
        raise ValidationError(
            f"Nobody in opsgate is called {', '.join(unknown)}: add them as "
            "people first, or check the spelling."
        )
    return list({u.pk: u for u in (found[n.lower()] for n in names)}.values())


class ProjectForm(Form):
    name = forms.CharField(
        max_length=256,
        strip=False,
        help_text="Also the Project tag on roles and EC2 instances: letters of "
        "any script, digits, spaces and _ . : / = + - @.",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    approvers = forms.CharField(
        required=False,
        help_text="E-mail addresses or user names of the people who decide its "
        "requests (with MFA), separated by commas.",
    )
    allowed_durations = forms.CharField(
        label="Allowed durations (hours)",
        initial="1, 8, 24, 72, 168",
        help_text="Comma-separated whole hours a requester may pick.",
    )
    allow_permanent = forms.BooleanField(
        label="Also allow access without time limit", required=False
    )

    def clean_name(self) -> str:
        # Here too, so a bad name and a bad duration show at once.
        name = self.cleaned_data["name"]
        try:
            validation.validate_project_name(name)
        except ValidationError as exc:
            raise ValidationError(validation.first_message(exc)) from None
        return name

    def clean_approvers(self) -> list:
        return people_named(self.cleaned_data["approvers"])

    def clean_allowed_durations(self) -> list[int]:
        raw = [p.strip() for p in self.cleaned_data["allowed_durations"].split(",")]
        try:
            hours = [int(p) for p in raw if p]
        except ValueError:
            raise ValidationError(
                "Use whole numbers of hours separated by commas, e.g. 1, 8, 24."
            ) from None
        if not hours:
            raise ValidationError("Give at least one duration.")
        if any(h < MIN_HOURS or h > MAX_HOURS for h in hours):
            raise ValidationError(DURATIONS_RANGE)
        return hours


class ProjectEditForm(ProjectForm):
    """The project page's edit: everything but the name (the Project tag)."""

    name = None
    rejection_reason_optional = forms.BooleanField(
        label="Approvers may reject without giving a reason",
        required=False,
        help_text="Off: a rejection needs a reason, which the requester sees.",
    )
    # Readiness (issue 25).
    create_os_users = forms.BooleanField(
        label="Create the OS run-as users on the project's instances",
        required=False,
        help_text="On: the readiness check runs the SSM document "
        "opsgate-EnsureOsUser, which creates a locked local user with a home "
        "directory and no sudo where it is missing. Off: it only checks. "
        "opsgate never deletes these users (files may belong to them).",
    )

    @classmethod
    def initial_for(cls, project: Project) -> dict:
        return {
            "description": project.description,
            "approvers": ", ".join(
                a.email or a.get_username() for a in project.approvers.all()
            ),
            "allowed_durations": ", ".join(str(h) for h in project.durations),
            "allow_permanent": project.allow_permanent,
            "rejection_reason_optional": project.rejection_reason_optional,
            "create_os_users": project.create_os_users,
        }


class RolePrincipalsForm(Form):
    extra_principal_arns = forms.CharField(
        label="Cross-account IAM users",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_PRINCIPALS_TEXT}),
        help_text="One ARN per line, e.g. arn:aws:iam::111122223333:user/alice. "
        "Remove a line to take that user out of the role's trust.",
    )

    def clean_extra_principal_arns(self) -> list[str]:
        return RoleForm.clean_extra_principal_arns(self)


class RoleForm(Form):
    os_user = forms.CharField(
        label="OS user",
        max_length=64,
        strip=False,
        help_text="The Linux user sessions run as, e.g. deploy. Never root.",
    )
    role_name = forms.CharField(
        label="Role name",
        required=False,
        max_length=128,
        strip=False,
        help_text="Leave empty to derive it from the project and OS user.",
    )
    account = forms.ModelChoiceField(
        label="AWS account",
        queryset=AwsAccount.objects.filter(holds_roles=True),
        required=False,
        empty_label="The project's account",
        help_text="Where the role lives (a project may have roles in several).",
    )
    extra_principal_arns = forms.CharField(
        label="Cross-account IAM users",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": MAX_PRINCIPALS_TEXT}),
        help_text="One ARN per line, e.g. arn:aws:iam::111122223333:user/alice.",
    )

    def clean_extra_principal_arns(self) -> list[str]:
        raw = self.cleaned_data["extra_principal_arns"]
        if len(raw) > MAX_PRINCIPALS_TEXT:
            raise ValidationError(principals_too_long(len(raw)))
        return [
            line.strip()
            for line in self.cleaned_data["extra_principal_arns"].splitlines()
            if line.strip()
        ]


class ProjectFilterForm(Form):
    q = forms.CharField(required=False, max_length=200, label="Name")
    account = forms.ModelChoiceField(
        queryset=AwsAccount.objects.order_by("name"),
        required=False,
        empty_label="All accounts",
        label="Account",
    )
    approver = forms.CharField(
        required=False, max_length=254, help_text="E-mail or user name."
    )


class ProjectRulesForm(Form):
    """A project's approval rules (issue 13); the service validates them."""

    approvals_required = forms.CharField(
        label="Approvals needed",
        initial="1",
        max_length=3,
        help_text="Distinct approvers who must approve each request, 1 to 3. "
        "The requester never counts.",
    )
    ticket_pattern = forms.CharField(
        label="Ticket format",
        required=False,
        max_length=200,
        strip=False,
        help_text="A regular expression every request's ticket must match, "
        "e.g. ^OPS-[0-9]+$. Empty: no ticket asked.",
    )
    ticket_url_template = forms.CharField(
        label="Ticket link",
        required=False,
        max_length=500,
        help_text="e.g. https://tracker.example.com/browse/{ticket}",
    )
    schedule_horizon_days = forms.CharField(
        label="Scheduled requests up to (days ahead)",
        initial="30",
        max_length=3,
        help_text="A request may name a start time at most this far ahead.",
    )


class RoleRulesForm(Form):
    approvers = forms.CharField(
        required=False,
        help_text="E-mail addresses or user names of the role's own approvers, "
        "separated by commas.",
    )
    approvers_replace_project = forms.BooleanField(
        label="Only these approvers decide (instead of the project's)",
        required=False,
    )
    approvals_required = forms.CharField(
        label="Approvals needed",
        required=False,
        max_length=3,
        help_text="1 to 3; empty: the project's number.",
    )

    def clean_approvers(self) -> list:
        return people_named(self.cleaned_data["approvers"])


class BreakGlassSettingsForm(Form):
    allow_break_glass = forms.BooleanField(
        label="Allow break-glass access", required=False
    )
    people = forms.CharField(
        label="People who may break glass",
        required=False,
        help_text="E-mail addresses or user names, separated by commas.",
    )
    break_glass_hours = forms.CharField(
        label="Duration (hours)", initial="1", max_length=3, help_text="1 to 24."
    )
    break_glass_daily_cap = forms.CharField(
        label="Uses per person per 24 hours", initial="2", max_length=3
    )
    break_glass_review_hours = forms.CharField(
        label="Review within (hours)", initial="24", max_length=4
    )

    def clean_people(self) -> list:
        return people_named(self.cleaned_data["people"])


class WebhooksForm(Form):
    """Write-only: the current URLs are never sent back to the browser."""

    slack_webhook_url = forms.CharField(
        label="New Slack incoming-webhook URL",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty keeps the current one.",
    )
    remove_slack = forms.BooleanField(label="Remove the Slack webhook", required=False)
    teams_webhook_url = forms.CharField(
        label="New Microsoft Teams incoming-webhook URL",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty keeps the current one.",
    )
    remove_teams = forms.BooleanField(label="Remove the Teams webhook", required=False)


class AutoRuleForm(Form):
    name = forms.CharField(label="Rule name", max_length=100)
    people = forms.CharField(
        help_text="E-mail addresses or user names, separated by commas."
    )
    max_hours = forms.CharField(
        label="Up to (hours)",
        max_length=4,
        help_text="Longer requests wait for approval.",
    )

    def clean_people(self) -> list:
        return people_named(self.cleaned_data["people"])

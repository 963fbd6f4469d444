"""Forms: input shape only. The rules live in the services; their
ValidationErrors come back onto these forms with `add_service_errors`."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower

from accounts_app import validation
from accounts_app.models import AuditEvent, AwsAccount, OperationRole, Project
from accounts_app.services.projects import (
    DURATIONS_RANGE,
    MAX_APPROVERS,
    MAX_HOURS,
    MIN_HOURS,
)
from accounts_app.services.roles import MAX_PRINCIPALS_TEXT, principals_too_long
from portal.params import DayField
from provisioning import soft_cache
from provisioning.models import DriftKind

PERMANENT = "permanent"


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: keyed messages on their
    field when the form has it, everything else at the top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error.messages)
    else:
        form.add_error(None, exc.messages)


class Form(forms.Form):
    """Labels without a trailing colon, and no `maxlength` in the page: the
    browser would cut a 65-character IAM name to 64 without a word and create
    a name nobody typed; the server says what is too long instead."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.pop("maxlength", None)


def _hours(h: int) -> str:
    if h % 24 == 0:
        days = h // 24
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{h} hour" if h == 1 else f"{h} hours"


class ProjectChoiceForm(Form):
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        empty_label="Choose a project…",
        help_text="The team or system you need to work on.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.filter(
            roles__isnull=False
        ).distinct()


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: OperationRole) -> str:
        label = f"{obj.os_user} (role {obj.role_name})"
        if obj.account_id != obj.project.account_id:  # a project in several
            label = f"{obj.os_user} in {obj.account} (role {obj.role_name})"
        return label


class AccessRequestForm(Form):
    role = RoleChoiceField(
        queryset=OperationRole.objects.none(),
        label="Run as (OS user)",
        empty_label=None,
        help_text="Session Manager logs you in as this Linux user.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="What you will do, e.g. a ticket number. Approvers see this.",
        error_messages={"required": "Say why you need this access."},
    )
    duration = forms.ChoiceField(
        label="For how long",
        help_text="Access ends by itself after this time.",
    )
    ticket = forms.CharField(required=False, max_length=100)
    starts_at = forms.DateTimeField(
        label="Start later (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional: a maintenance window. Empty: as soon as approved.",
        error_messages={"invalid": "Give a date and time, e.g. 2026-12-05 02:00."},
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = project.roles.select_related(
            "account", "project"
        )
        if project.ticket_pattern:
            # Checked against the pattern by the service (one rule for all).
            self.fields[
                "ticket"
            ].help_text = (
                f"{project.name} requires a ticket matching {project.ticket_pattern}."
            )
        else:
            del self.fields["ticket"]
        choices = [(str(h), _hours(h)) for h in project.durations]
        if project.allow_permanent:
            choices.append((PERMANENT, "No time limit"))
        self.fields["duration"].choices = choices

    def ticket_value(self) -> str:
        return self.cleaned_data.get("ticket", "")

    def starts_at_value(self):
        return self.cleaned_data.get("starts_at")

    def duration_hours(self) -> int | None:
        value = self.cleaned_data["duration"]
        return None if value == PERMANENT else int(value)


class DecisionForm(Form):
    """Approve or reject one request. The page also posts the role and project
    the approver saw: a POST naming others was tampered with and decides
    nothing (a request's role and project never change)."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")],
        error_messages={
            "required": "Choose approve or reject.",
            "invalid_choice": "Choose approve or reject.",
        },
    )
    comment = forms.CharField(required=False, max_length=2000)
    role = forms.IntegerField(required=False, widget=forms.HiddenInput)
    project = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, access_request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.access_request = access_request

    def clean(self):
        data = super().clean()
        req = self.access_request
        if req is None:
            return data
        for field, actual in (("role", req.role_id), ("project", req.role.project_id)):
            named = data.get(field)
            if named is not None and named != actual:
                self.add_error(
                    field,
                    f"This request is for {req.role.project.name} as "
                    f"{req.role.os_user} (role {req.role.role_name}); the form "
                    f"named another {field}. Nothing was decided: reload the page.",
                )
        if (
            data.get("decision") == "reject"
            and not (data.get("comment") or "").strip()
            and not req.role.project.rejection_reason_optional
        ):
            self.add_error(
                "comment", "Say why you reject it: the requester sees this reason."
            )
        return data

    def all_messages(self) -> list[str]:
        return [m for errors in self.errors.values() for m in errors]


class PersonForm(Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(
        label="E-mail",
        help_text="Their sign-in name for the portal: the invitation to set a "
        "password goes here. Without it they could never sign in.",
        error_messages={
            "required": "An e-mail address is required: it is how they sign in."
        },
    )
    iam_user_name = forms.CharField(
        label="IAM user name",
        max_length=64,
        strip=False,
        help_text="Letters A-Z, digits and _+=.@- (no spaces, no commas). "
        "Their virtual MFA device must carry the same name.",
    )
    is_staff = forms.BooleanField(
        label="Admin of opsgate", required=False, help_text="Can manage people."
    )


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


class OffboardForm(Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the audit log and shown on the ended requests.",
    )
    confirm = forms.BooleanField(
        label="I understand: this ends all their access and deletes the IAM user",
        error_messages={"required": "Tick the box to confirm."},
    )


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


AUDIT_ACTIONS_KEY = "opsgate:audit-actions"


def audit_actions() -> list[str]:
    """The kinds of audit rows there are: a DISTINCT over the whole log, so
    kept for five minutes (a new kind shows up in the list that late; the
    filter accepts it at once). Without the cache, read every time."""
    actions = soft_cache.get(AUDIT_ACTIONS_KEY)
    if actions is None:
        actions = list(
            AuditEvent.objects.order_by("action")
            .values_list("action", flat=True)
            .distinct()
        )
        soft_cache.set(AUDIT_ACTIONS_KEY, actions, 300)
    return actions


class AnyKindField(forms.ChoiceField):
    """The kinds listed may be five minutes old: any kind is accepted."""

    def valid_value(self, value) -> bool:
        return len(value) <= 64


class AuditFilterForm(Form):
    person = forms.CharField(
        required=False, max_length=200, help_text="Who acted, or on whom."
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.all(), required=False, empty_label="All projects"
    )
    action = AnyKindField(required=False, label="Kind")
    since = DayField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = DayField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All kinds")] + [
            (a, a) for a in audit_actions()
        ]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data


class DriftFilterForm(Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Open and resolved"), ("open", "Open"), ("resolved", "Resolved")],
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "All kinds"), *DriftKind.choices]
    )
    account = forms.ModelChoiceField(
        queryset=AwsAccount.objects.order_by("name"),
        required=False,
        empty_label="All accounts",
    )


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


AGES = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}


class ApprovalFilterForm(Form):
    """Filters of the approvals page: one of the approver's projects, an
    account, how long a request has waited, the status of past decisions.
    The choices come from the projects and accounts already loaded."""

    project = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    account = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    age = forms.ChoiceField(
        required=False,
        label="Waiting",
        choices=[
            ("", "Any time"),
            ("1h", "More than an hour"),
            ("24h", "More than a day"),
            ("7d", "More than a week"),
            ("30d", "More than 30 days"),
        ],
    )
    status = forms.ChoiceField(
        required=False,
        label="Decided",
        choices=[
            ("", "Any decision"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("revoked", "Revoked or ended"),
            ("expired", "Expired"),
        ],
    )

    def __init__(self, *args, projects=(), accounts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "All my projects")] + [
            (p.pk, p.name) for p in projects
        ]
        # The accounts of the projects' roles (a project may have roles in
        # several accounts); without them, the projects' own accounts.
        if accounts is None:
            accounts = {p.account_id: p.account.name for p in projects}
        self.fields["account"].choices = [("", "All accounts")] + sorted(
            accounts.items(), key=lambda kv: kv[1]
        )

    def hours(self) -> int | None:
        return AGES.get(self.cleaned_data.get("age") or "")


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


class BreakGlassForm(Form):
    role = RoleChoiceField(
        queryset=OperationRole.objects.none(),
        label="Run as (OS user)",
        empty_label=None,
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text="The emergency. Every approver and admin reads it at once.",
        error_messages={"required": "Say what the emergency is."},
    )

    def __init__(self, *args, project: Project, **kwargs):
        kwargs.setdefault("prefix", "bg")
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = project.roles.all()


class BreakGlassReviewForm(Form):
    outcome = forms.ChoiceField(
        choices=[("acknowledged", "Acknowledge"), ("flagged", "Flag")],
        error_messages={"required": "Acknowledge or flag."},
    )
    note = forms.CharField(required=False, max_length=2000)


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


class AccessReviewForm(Form):
    deadline = forms.DateTimeField(
        label="Deadline (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        error_messages={"invalid": "Give a date and time, e.g. 2026-12-31 17:00."},
    )
    min_age_days = forms.IntegerField(
        label="Grants older than (days)",
        required=False,
        min_value=0,
        max_value=3650,
        help_text="Empty: grants of any age.",
    )
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every project.",
    )
    on_deadline = forms.ChoiceField(
        label="At the deadline, grants nobody reviewed are",
        choices=[("report", "reported"), ("revoke", "revoked")],
    )


class ReviewItemForm(Form):
    decision = forms.ChoiceField(
        choices=[("confirmed", "Confirm"), ("revoked", "Revoke")],
        error_messages={"required": "Confirm or revoke."},
    )
    note = forms.CharField(required=False, max_length=2000)


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


class AwsAccountForm(Form):
    """An AWS account added by hand (or enabled after discovery); the rules
    are in accounts_app.services.accounts."""

    account_id = forms.CharField(
        label="Account id", max_length=12, help_text="12 digits."
    )
    name = forms.CharField(max_length=100, help_text="Such as prod or staging.")
    holds_people = forms.BooleanField(
        label="Holds people", required=False, help_text="The IAM users live here."
    )
    holds_roles = forms.BooleanField(
        label="Holds roles", required=False, help_text="Operation roles live here."
    )
    identity_account = forms.CharField(
        label="Identity account",
        max_length=12,
        required=False,
        help_text="Id of the account whose IAM users its roles trust. Empty: "
        "this account itself.",
    )
    assume_role_arn = forms.CharField(
        label="Provisioner role ARN",
        max_length=200,
        required=False,
        help_text="The role opsgate assumes here (deploy/cloudformation/"
        "opsgate-provisioner.json). Empty: opsgate's own credentials.",
    )
    external_id = forms.CharField(label="External id", max_length=1224, required=False)
    regions = forms.CharField(
        max_length=500,
        required=False,
        help_text="Where its SSM sessions run, comma-separated. Empty: the "
        "default region.",
    )

    def region_list(self) -> list[str]:
        return [r for r in self.cleaned_data.get("regions", "").split(",") if r.strip()]


class DiscoverForm(Form):
    ou = forms.CharField(
        label="Organizational unit",
        max_length=100,
        required=False,
        help_text="An OU id (ou-…) to list only its accounts. Empty: all.",
    )

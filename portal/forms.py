"""Forms: input shape only. The rules live in the services; their
ValidationErrors come back onto these forms with `add_service_errors`."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower

from accounts_app.models import AuditEvent, AwsAccount, OperationRole, Project
from accounts_app.services.projects import MAX_APPROVERS
from accounts_app.services.roles import MAX_PRINCIPALS_TEXT, principals_too_long
from portal.params import DayField
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
    """Labels without a trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


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

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = project.roles.select_related(
            "account", "project"
        )
        choices = [(str(h), _hours(h)) for h in project.durations]
        if project.allow_permanent:
            choices.append((PERMANENT, "No time limit"))
        self.fields["duration"].choices = choices

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
        return data

    def all_messages(self) -> list[str]:
        return [m for errors in self.errors.values() for m in errors]


class PersonForm(Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(
        label="E-mail",
        required=False,
        help_text="Sign-in name for the portal. The invitation goes here.",
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

    def clean_approvers(self) -> list:
        """People by e-mail or user name, found in one query: a text field,
        because a list of every person to tick does not scale past a few
        hundred people."""
        names = list(
            {
                n.strip().lower(): n.strip()
                for n in self.cleaned_data["approvers"].split(",")
                if n.strip()
            }.values()
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
        return hours


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


class AuditFilterForm(Form):
    person = forms.CharField(
        required=False, max_length=200, help_text="Who acted, or on whom."
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.all(), required=False, empty_label="All projects"
    )
    action = forms.ChoiceField(required=False, label="Kind")
    since = DayField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = DayField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        actions = (
            AuditEvent.objects.order_by("action")
            .values_list("action", flat=True)
            .distinct()
        )
        self.fields["action"].choices = [("", "All kinds")] + [(a, a) for a in actions]

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

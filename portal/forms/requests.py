"""Requester forms: choosing a project and role, asking for access,
break-glass activation."""

from django import forms

from accounts_app.models import OperationRole, Project
from portal.forms.base import Form

PERMANENT = "permanent"


def _hours(h: int) -> str:
    if h % 24 == 0:
        days = h // 24
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{h} hour" if h == 1 else f"{h} hours"


class ProjectField(forms.ModelChoiceField):
    """Only projects with an OS user are offered. A link to one without (an
    admin shared it too early) says so and what to do, rather than Django's
    "not one of the available choices"."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except forms.ValidationError:
            name = _project_without_roles(value)
            if name is None:
                raise
            raise forms.ValidationError(
                f"{name} has no OS users yet, so nobody can ask for access to "
                "it. Ask an opsgate admin to add one, or pick another project.",
                code="no_roles",
            ) from None


def _project_without_roles(value) -> str | None:
    try:
        pk = int(str(value))
    except ValueError:
        return None
    if not 0 < pk < 2**63:  # a bigint key; beyond it PostgreSQL refuses the query
        return None
    found = Project.objects.filter(pk=pk, roles__isnull=True)
    return found.values_list("name", flat=True).first()


class ProjectChoiceForm(Form):
    project = ProjectField(
        queryset=Project.objects.none(),
        empty_label="Choose a project…",
        help_text="The team or system you need to work on.",
        error_messages={
            "invalid_choice": "There is no such project: pick one from the list."
        },
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
        # A page left open while an admin changed the durations posts one
        # that is gone: say which ones are allowed now.
        labels = [label[0].lower() + label[1:] for _, label in choices]
        allowed = ", ".join(labels[:-1]) + " or " if len(labels) > 1 else ""
        self.fields["duration"].error_messages["invalid_choice"] = (
            f"{project.name} allows {allowed}{labels[-1]}: pick one of these."
        )

    def ticket_value(self) -> str:
        return self.cleaned_data.get("ticket", "")

    def starts_at_value(self):
        return self.cleaned_data.get("starts_at")

    def duration_hours(self) -> int | None:
        value = self.cleaned_data["duration"]
        return None if value == PERMANENT else int(value)


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

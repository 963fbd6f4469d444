"""The audit log's filters (also the API's) and the kinds of audit rows."""

from django import forms

from accounts_app.models import AuditEvent, Project
from portal.forms.base import Form
from portal.params import DayField
from provisioning import soft_cache

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
        # A name per option: the whole rows of every project cost the page.
        queryset=Project.objects.only("name"),
        required=False,
        empty_label="All projects",
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

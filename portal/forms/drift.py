"""The drift page's filters."""

from django import forms

from accounts_app.models import AwsAccount
from portal.forms.base import Form
from provisioning.models import DriftKind


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

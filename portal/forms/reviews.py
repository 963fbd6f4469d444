"""Access review forms (issue 13): starting a review, an approver's
decision on one of its items."""

from django import forms

from accounts_app.models import Project
from portal.forms.base import Form


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

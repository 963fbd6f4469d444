"""Approver forms: a decision on a request, the filters of the queue and of
the decisions, the review of a break-glass activation."""

from django import forms

from portal.forms.base import Form


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


AGES = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}


class _ApproverFilterForm(Form):
    """Filters of the approvals pages: one of the approver's projects, an
    account. The choices come from the projects and accounts already loaded."""

    project = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    account = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)

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


class QueueFilterForm(_ApproverFilterForm):
    """The queue's filters: also how long a request has waited."""

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

    def hours(self) -> int | None:
        return AGES.get(self.cleaned_data.get("age") or "")


class DecidedFilterForm(_ApproverFilterForm):
    """The filters of the user's decisions: also how each was decided."""

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


class BreakGlassReviewForm(Form):
    outcome = forms.ChoiceField(
        choices=[("acknowledged", "Acknowledge"), ("flagged", "Flag")],
        error_messages={"required": "Acknowledge or flag."},
    )
    note = forms.CharField(required=False, max_length=2000)

"""Admin forms about people: adding one, offboarding."""

from django import forms

from portal.forms.base import Form


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

"""Admin forms about AWS accounts: adding or editing one, discovering an
organization's accounts."""

from django import forms

from portal.forms.base import Form


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

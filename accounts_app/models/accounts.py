"""The AWS accounts opsgate manages (DESIGN §1.5)."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from accounts_app.models.sync import SyncState


class AwsAccount(SyncState):
    """An AWS account opsgate manages. Sync state covers the account baseline:
    the operators group and the shared managed policies."""

    account_id = models.CharField(
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^\d{12}$", "An account id has 12 digits.")],
    )
    name = models.CharField(max_length=100, unique=True)
    partition = models.CharField(max_length=20, default="aws")
    # Empty: the default credential chain. Otherwise opsgate assumes this role.
    assume_role_arn = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    is_default = models.BooleanField(default=False)
    baseline_fingerprint = models.CharField(max_length=64, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # When a sync last found opsgate's objects missing in AWS here (a reconcile
    # of the account is then asked for at once; objects synced before this
    # time are not "recent" to it).
    objects_missing_at = models.DateTimeField(null=True, blank=True)
    # AssumeRolePolicySizeQuota as provisioning last read it (baseline sync,
    # reconcile); empty until then: OPSGATE_DEFAULT_TRUST_POLICY_QUOTA.
    trust_policy_quota = models.PositiveIntegerField(null=True, blank=True)
    # What the account holds (DESIGN §1.5): people (the operators group, its
    # policies, IAM users), roles (role policies, operation roles), or both.
    holds_people = models.BooleanField(default=True)
    holds_roles = models.BooleanField(default=True)
    # The account whose IAM users this account's roles trust; empty: itself.
    identity_account = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="trusting_accounts",
    )
    # Where its SSM sessions run; empty: OPSGATE_REGION.
    regions = models.JSONField(default=list, blank=True)
    # The last look through opsgate's way in (sts:GetCallerIdentity): when,
    # and the AWS error ("" when it answered).
    reach_checked_at = models.DateTimeField(null=True, blank=True)
    reach_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holds_people=True) | Q(holds_roles=True),
                name="account_holds_something",
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"

    @property
    def identity(self) -> "AwsAccount":
        """The account whose IAM users this account's roles trust."""
        return self.identity_account or self

    @property
    def session_regions(self) -> list[str]:
        return list(self.regions) or [settings.OPSGATE["REGION"]]

    @property
    def kind_label(self) -> str:
        if self.holds_people and self.holds_roles:
            return "people and roles"
        return "people" if self.holds_people else "roles"

    @property
    def trust_quota(self) -> int:
        """Characters a role's trust policy may hold in this account."""
        return self.trust_policy_quota or settings.OPSGATE["DEFAULT_TRUST_POLICY_QUOTA"]

"""People's IAM users, one per person and account."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from accounts_app import validation
from accounts_app.models.accounts import AwsAccount
from accounts_app.models.sync import SyncState


class IamUserState(models.TextChoices):
    ACTIVE = "active", "Active"
    REMOVED = "removed", "Removed"


class IamUser(SyncState):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="iam_users"
    )
    account = models.ForeignKey(
        AwsAccount, on_delete=models.PROTECT, related_name="iam_users"
    )
    name = models.CharField(
        max_length=64, validators=[validation.validate_iam_user_name]
    )
    email = models.EmailField(blank=True)
    state = models.CharField(
        max_length=16, choices=IamUserState.choices, default=IamUserState.ACTIVE
    )
    arn = models.CharField(max_length=300, blank=True)
    unique_id = models.CharField(max_length=64, blank=True)
    # When CreateUser succeeded: IAM may reject the new principal in trust
    # policies for a short while after (eventual consistency).
    created_in_aws_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "IAM user"
        # The People page's order: its first page without sorting everyone.
        # (Its search has trigram indexes, PostgreSQL only: migration 0011.)
        # The dashboard's people out of sync with AWS (provisioning.status):
        # a few, counted on every view, among everyone.
        indexes = [
            models.Index(fields=["name"], name="iam_user_name_idx"),
            models.Index(
                fields=["name"],
                condition=Q(error_is_permanent=True)
                | Q(applied_version__lt=F("desired_version")),
                name="iam_user_unsynced_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "account",
                condition=Q(state="active"),
                name="iam_user_name_unique_ci",
            ),
            models.UniqueConstraint(
                fields=["user", "account"],
                condition=Q(state="active"),
                name="one_iam_user_per_person_account",
            ),
        ]

    def __str__(self) -> str:
        return self.name

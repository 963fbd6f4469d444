"""What reconcile found different between AWS and the desired state."""

from django.db import models
from django.db.models import Q

from accounts_app.models import AwsAccount


class DriftKind(models.TextChoices):
    MISSING = "missing", "Deleted in AWS"
    EXTRA = "extra", "In AWS, should not be"
    UNEXPECTED = "unexpected", "Tagged as opsgate's, unknown to the database"
    NOT_OWNED = "not_owned", "Same name, not managed by opsgate"
    TAG_CHANGED = "tag_changed", "Tag changed or missing"
    TAG_EXTRA = "tag_extra", "Extra tag with a key opsgate owns"
    TAG_FOREIGN = "tag_foreign", "Extra tag on a role"
    TRUST_EDITED = "trust_edited", "Trust policy edited"
    TRUST_ESCALATION = "trust_escalation", "Trust allows sts:TagSession or anyone"
    ORPHAN_PRINCIPAL = "orphan_principal", "Trust holds the id of a deleted principal"
    POLICY_MISSING = "policy_missing", "Attached policy missing"
    POLICY_EXTRA = "policy_extra", "Extra policy"
    POLICY_DOCUMENT = "policy_document", "Policy document changed"
    GROUP_MEMBER_MISSING = "group_member_missing", "Removed from the operators group"
    BOUNDARY = "boundary", "Permissions boundary missing or different"


class Drift(models.Model):
    """A difference between AWS and the database found by reconcile. Open while
    resolved_at is empty; one open row per object and kind."""

    account = models.ForeignKey(
        AwsAccount, on_delete=models.CASCADE, related_name="drifts"
    )
    object_type = models.CharField(max_length=16)  # user, role, group, policy
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=32, choices=DriftKind.choices)
    detail = models.TextField(blank=True)
    expected = models.JSONField(null=True, blank=True)
    actual = models.JSONField(null=True, blank=True)
    repairable = models.BooleanField(default=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    repaired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen", "object_type", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "object_type", "name", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_drift_per_object_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.name}: {self.get_kind_display()}"

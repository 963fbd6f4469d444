"""Reviews after the fact: of each break-glass use, and an admin's
access review of standing grants."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts_app.models.projects import Project
from accounts_app.models.requests import AccessRequest


class ReviewOutcome(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FLAGGED = "flagged", "Flagged"


class BreakGlassReview(models.Model):
    """Each break-glass use waits for an approver to acknowledge or flag it."""

    access_request = models.OneToOneField(
        AccessRequest, on_delete=models.CASCADE, related_name="break_glass_review"
    )
    due_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=ReviewOutcome.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    # When the approvers were told the review is overdue (once).
    overdue_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]

    def __str__(self) -> str:
        return f"break-glass review of #{self.access_request_id}"

    @property
    def is_overdue(self) -> bool:
        return not self.outcome and self.due_at <= timezone.now()


class AccessReview(models.Model):
    """An admin's review of standing grants (issue 13): each approver confirms
    or revokes the grants of their projects by the deadline; what is left is
    revoked or reported (on_deadline)."""

    REVOKE, REPORT = "revoke", "report"

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    deadline = models.DateTimeField()
    # Scope: grants older than this many days (None: any age), in these
    # projects (none: every project).
    min_age_days = models.PositiveIntegerField(null=True, blank=True)
    projects = models.ManyToManyField(Project, blank=True, related_name="+")
    on_deadline = models.CharField(
        max_length=8, choices=[(REVOKE, "Revoke"), (REPORT, "Report")], default=REPORT
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the approvers were reminded of the deadline (once, a day before).
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"access review #{self.pk} (deadline {self.deadline:%Y-%m-%d})"


class ReviewDecision(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    REVOKED = "revoked", "Revoked"
    # At the deadline, with nobody's decision:
    REVOKED_UNREVIEWED = "revoked_unreviewed", "Revoked (not reviewed)"
    UNREVIEWED = "unreviewed", "Not reviewed"
    # The grant ended on its own before anyone decided.
    ENDED = "ended", "Ended meanwhile"


class AccessReviewItem(models.Model):
    review = models.ForeignKey(
        AccessReview, on_delete=models.CASCADE, related_name="items"
    )
    grant = models.ForeignKey(
        AccessRequest, on_delete=models.PROTECT, related_name="review_items"
    )
    decision = models.CharField(
        max_length=20, choices=ReviewDecision.choices, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "grant"], name="one_item_per_review_grant"
            )
        ]

    def __str__(self) -> str:
        return f"review #{self.review_id} item for grant #{self.grant_id}"

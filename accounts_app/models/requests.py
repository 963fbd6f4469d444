"""Access requests (approved, unexpired and unrevoked: grants) and the
approvals they collect."""

from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts_app.models.people import IamUser
from accounts_app.models.projects import AutoApprovalRule, OperationRole


class ReadinessState(models.TextChoices):
    """Readiness of a grant (issue 25): can the person really get in?"""

    UNKNOWN = "unknown", "Not checked"
    CHECKING = "checking", "Checking"
    READY = "ready", "Ready"
    NOT_READY = "not_ready", "Not ready"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class AccessRequest(models.Model):
    """A request for one operation role. Approved, unexpired and unrevoked: a grant."""

    TRANSITIONS = {
        RequestStatus.PENDING: {
            RequestStatus.APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
        },
        RequestStatus.APPROVED: {RequestStatus.REVOKED, RequestStatus.EXPIRED},
    }

    requester = models.ForeignKey(
        IamUser, on_delete=models.PROTECT, related_name="access_requests"
    )
    role = models.ForeignKey(
        OperationRole, on_delete=models.PROTECT, related_name="requests"
    )
    reason = models.TextField()
    # None: permanent (only where the project allows it, or imported grants).
    duration_hours = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the role's trust in AWS first listed the requester for this grant.
    provisioned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who ended the request (cancel, revoke, "I'm done", offboarding) and why;
    # None with an ended_at: opsgate itself (expiry, the worker's re-check).
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    end_comment = models.TextField(blank=True)
    # When the requester was reminded that this grant expires soon (sent once).
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    # Ending a grant in AWS (DESIGN §4.1), one step after the other, each
    # recorded when done: (1) the role's inline deny covers the person's
    # sessions issued before `deny_cutoff`; (2) the trust was rewritten
    # without them; (3) their SSM sessions were terminated (again after IAM
    # propagated the trust). A grant replaced by an extension (the person
    # stayed in the trust) gets the three dates and no cutoff.
    deny_cutoff = models.DateTimeField(null=True, blank=True)
    deny_written_at = models.DateTimeField(null=True, blank=True)
    trust_removed_at = models.DateTimeField(null=True, blank=True)
    sessions_ended_at = models.DateTimeField(null=True, blank=True)
    # Distinct approvals this request needs (the role's or project's quorum
    # when it was made); the Approval rows record who gave them.
    approvals_required = models.PositiveSmallIntegerField(default=1)
    ticket = models.CharField(max_length=100, blank=True)
    # A self-activated emergency grant (no approval; reviewed afterwards).
    break_glass = models.BooleanField(default=False)
    # Approved at once by an auto-approval rule (kept when the rule is gone,
    # so the worker's re-check still knows nobody approved it).
    auto_approved = models.BooleanField(default=False)
    auto_rule = models.ForeignKey(
        AutoApprovalRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="grants",
    )
    # Scheduled access: the grant starts here (None: when approved) and the
    # trust lists the person only from then; start_applied_at records when
    # the lifecycle run asked the worker to add them.
    starts_at = models.DateTimeField(null=True, blank=True)
    start_applied_at = models.DateTimeField(null=True, blank=True)
    # Readiness (issue 25, provisioning/readiness/): what AWS holds, read
    # back after the role converged and on "Check again". readiness_checks:
    # [{"key", "title", "ok", "message", "fix", "link", "rows"}]; ready_at:
    # the first time every check passed; readiness_mailed: the outcome last
    # e-mailed ("ready", or the failed checks' keys), so each goes once.
    readiness_state = models.CharField(
        max_length=16, choices=ReadinessState.choices, default=ReadinessState.UNKNOWN
    )
    readiness_checks = models.JSONField(default=list, blank=True)
    readiness_checked_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    readiness_mailed = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Grants by end (dashboard: expiring soon, active count) and
            # pending requests by age (dashboard, approvals), without reading
            # the finished requests that are most of the table.
            models.Index(
                fields=["expires_at"],
                condition=Q(status="approved"),
                name="grant_expiry_idx",
            ),
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="pending_age_idx",
            ),
            # An approver's queue and grants: the requests of the roles they
            # decide (approval_rules.decidable_by), by age and by end.
            models.Index(
                fields=["role", "created_at"],
                condition=Q(status="pending"),
                name="pending_role_idx",
            ),
            models.Index(
                fields=["role", "expires_at"],
                condition=Q(status="approved"),
                name="grant_role_idx",
            ),
            # Ended grants whose closing steps in AWS are not all recorded
            # (dashboard): a few, among every request ever ended.
            models.Index(
                fields=["ended_at"],
                condition=Q(status__in=["revoked", "expired"])
                & (
                    Q(deny_written_at__isnull=True)
                    | Q(trust_removed_at__isnull=True)
                    | Q(sessions_ended_at__isnull=True)
                ),
                name="ending_open_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "role"],
                condition=Q(status="pending"),
                name="one_pending_request_per_user_role",
            ),
            models.UniqueConstraint(
                fields=["requester", "role"],
                condition=Q(status="approved"),
                name="one_grant_per_user_role",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.requester} → {self.role.role_name} ({self.status})"

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())

    def transition_to(self, status: str) -> None:
        if not self.can_transition_to(status):
            raise ValidationError(
                f"This request is {self.get_status_display().lower()} and cannot "
                f"become {RequestStatus(status).label.lower()}."
            )
        self.status = status

    @property
    def ticket_url(self) -> str:
        """The ticket as a link, when its project gives a link template."""
        template = self.role.project.ticket_url_template
        if not (self.ticket and template):
            return ""
        return template.replace("{ticket}", quote(self.ticket, safe=""))

    @property
    def is_active_grant(self) -> bool:
        now = timezone.now()
        return (
            self.status == RequestStatus.APPROVED
            and (self.starts_at is None or self.starts_at <= now)
            and (self.expires_at is None or self.expires_at > now)
        )

    @property
    def window_end(self):
        """When a scheduled request's window ends (start + duration)."""
        if self.starts_at is None or self.duration_hours is None:
            return self.expires_at
        return self.starts_at + timedelta(hours=self.duration_hours)

    @property
    def is_scheduled(self) -> bool:
        """Approved ahead of its start: not in the trust yet."""
        return (
            self.status == RequestStatus.APPROVED
            and self.starts_at is not None
            and self.starts_at > timezone.now()
        )

    @property
    def duration(self) -> timedelta | None:
        return (
            None
            if self.duration_hours is None
            else timedelta(hours=self.duration_hours)
        )

    @classmethod
    def ended_grants(cls, now=None):
        """Grants that gave access once and no longer do (including those past
        their expiry that the periodic task has not marked yet)."""
        return cls.objects.filter(cls.ended_q(now or timezone.now()))

    @staticmethod
    def ended_q(now) -> Q:
        """ended_grants as a condition (to combine with others in one read)."""
        was_granted = Q(provisioned_at__isnull=False) | Q(decided_at__isnull=False)
        ended = Q(status__in=[RequestStatus.REVOKED, RequestStatus.EXPIRED]) | Q(
            status=RequestStatus.APPROVED, expires_at__lte=now
        )
        return was_granted & ended

    @classmethod
    def active_grants(cls, now=None):
        now = now or timezone.now()
        return cls.objects.filter(
            Q(status=RequestStatus.APPROVED),
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            Q(starts_at__isnull=True) | Q(starts_at__lte=now),
        )


class Approval(models.Model):
    """One approver's yes to a pending request; a quorum of them approves it."""

    access_request = models.ForeignKey(
        AccessRequest, on_delete=models.CASCADE, related_name="approvals"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["access_request", "approver"], name="one_approval_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved #{self.access_request_id}"

"""The desired state (DESIGN §2): AWS accounts, people and their IAM users,
projects, operation roles, access requests and the audit log. The worker
(provisioning) makes AWS match it."""

from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts_app import validation


class SyncStatus(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    PENDING = "pending", "Pending"
    ERROR = "error", "Error"


class SyncState(models.Model):
    """Every change bumps desired_version; the worker records applied_version."""

    desired_version = models.PositiveIntegerField(default=1)
    applied_version = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    error_is_permanent = models.BooleanField(default=False)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    sync_requested_at = models.DateTimeField(null=True, blank=True)
    # A task for this object is queued or waiting to retry until then: nobody
    # publishes another (the sweep included). Taken by request_sync (in the
    # change's transaction) or a publisher; cleared by the worker.
    sync_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def sync_status(self) -> str:
        # A transient error stays "pending" (the worker retries; last_error
        # says why); only a permanent one needs a person.
        if self.error_is_permanent:
            return SyncStatus.ERROR
        if self.applied_version >= self.desired_version:
            return SyncStatus.IN_SYNC
        return SyncStatus.PENDING

    def get_sync_status_display(self) -> str:
        return SyncStatus(self.sync_status).label

    def bump(self) -> None:
        """Record that the desired state changed; the worker will converge."""
        type(self).objects.filter(pk=self.pk).update(
            desired_version=F("desired_version") + 1, error_is_permanent=False
        )
        self.refresh_from_db(fields=["desired_version", "error_is_permanent"])

    @classmethod
    def behind(cls):
        return cls.objects.filter(applied_version__lt=F("desired_version"))


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


class Project(models.Model):
    name = models.CharField(
        max_length=256, validators=[validation.validate_project_name]
    )
    account = models.ForeignKey(
        AwsAccount, on_delete=models.PROTECT, related_name="projects"
    )
    description = models.TextField(blank=True)
    approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="approver_of"
    )
    # Durations a requester may pick, in hours.
    allowed_durations = models.JSONField(default=list, blank=True)
    allow_permanent = models.BooleanField(default=False)
    # Approvers must give a reason to reject unless the project says otherwise.
    rejection_reason_optional = models.BooleanField(default=False)
    # Approval rules (issue 13, accounts_app/services/rules.py). The defaults
    # keep the plain behaviour: one approver decides, no ticket.
    approvals_required = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    ticket_pattern = models.CharField(max_length=200, blank=True)
    ticket_url_template = models.CharField(max_length=500, blank=True)
    # Break-glass: the people marked here self-activate a role at once, for
    # at most break_glass_hours, at most break_glass_daily_cap times a day;
    # an approver reviews each use within break_glass_review_hours.
    allow_break_glass = models.BooleanField(default=False)
    break_glass_people = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="break_glass_for"
    )
    break_glass_hours = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(24)]
    )
    break_glass_daily_cap = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    break_glass_review_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 14)]
    )
    # Scheduled access: how far ahead a request may start.
    schedule_horizon_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    # Chat notifications (accounts_app/chat.py): secrets, never shown again.
    slack_webhook_url = models.CharField(max_length=500, blank=True)
    teams_webhook_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    DEFAULT_DURATIONS = [1, 8, 24, 72, 168]

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="unique_project_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def durations(self) -> list[int]:
        return sorted(self.allowed_durations or self.DEFAULT_DURATIONS)


class OperationRole(SyncState):
    """One IAM role per (project, OS run-as user)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="roles")
    # Denormalised from project so role names can be unique per account.
    account = models.ForeignKey(
        AwsAccount, on_delete=models.PROTECT, related_name="roles"
    )
    os_user = models.CharField(max_length=32, validators=[validation.validate_os_user])
    role_name = models.CharField(max_length=64)
    extra_principal_arns = models.JSONField(default=list, blank=True)
    arn = models.CharField(max_length=300, blank=True)
    unique_id = models.CharField(max_length=64, blank=True)
    exists_in_aws = models.BooleanField(default=False)
    # Set while the role holds an inline deny for revoked users' sessions: when
    # the last entry may go (revocation + MaxSessionDuration).
    revoked_sessions_until = models.DateTimeField(null=True, blank=True)
    # The cross-account users the trust last listed (None: not recorded yet),
    # and the ending of those removed since: [{"arn", "name", "cutoff",
    # "deny", "trust", "sessions"}], ISO dates of the steps done, as for an
    # ended grant (AccessRequest.deny_cutoff and the rest).
    applied_extra_principal_arns = models.JSONField(null=True, blank=True)
    ended_principals = models.JSONField(default=list, blank=True)
    # When opsgate found the role, or a policy it needs, missing in AWS; cleared
    # by the next successful sync. Its grants are not shown as active meanwhile.
    missing_since = models.DateTimeField(null=True, blank=True)
    # Approval rules per role: its own approvers (in addition to the project's,
    # or instead of them) and a quorum overriding the project's.
    approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="role_approver_of"
    )
    approvers_replace_project = models.BooleanField(default=False)
    approvals_required = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project__name", "os_user"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "account", "os_user"],
                name="one_role_per_project_account_os_user",
            ),
            models.UniqueConstraint(
                Lower("role_name"), "account", name="role_name_unique_ci"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role_name} ({self.project.name} as {self.os_user})"

    # What names the role in AWS (name, account; the path is a setting) or
    # what it reaches (the Project and SSMSessionRunAs tags).
    IDENTITY_FIELDS = ("project_id", "account_id", "os_user", "role_name")

    def save(self, *args, **kwargs) -> None:
        """A role's AWS identity never changes in place (DESIGN §4.1): a
        rename or a move would leave the old IAM role trusting its people. A
        change is a new role plus the end of the old one's grants."""
        fields = kwargs.get("update_fields")
        names = {f.removesuffix("_id") for f in self.IDENTITY_FIELDS}
        names |= set(self.IDENTITY_FIELDS)
        if not self._state.adding and (fields is None or names & set(fields)):
            stored = (
                type(self)
                .objects.filter(pk=self.pk)
                .values_list(*self.IDENTITY_FIELDS)
                .first()
            )
            if stored and stored != tuple(
                getattr(self, f) for f in self.IDENTITY_FIELDS
            ):
                raise ValidationError(
                    "A role's name, account, project and OS user never change: "
                    "add a new role and end the grants of this one."
                )
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.account_id and not self.account.holds_roles:
            raise ValidationError(
                f"{self.account} holds no roles: pick an account that holds roles."
            )


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


class AutoApprovalRule(models.Model):
    """A role's auto-approval: requests by the listed people for at most
    max_hours become grants at once (issue 13)."""

    role = models.ForeignKey(
        OperationRole, on_delete=models.CASCADE, related_name="auto_rules"
    )
    name = models.CharField(max_length=100)
    people = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+"
    )
    max_hours = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(24 * 366)]
    )
    # The admin whose approval the rule is: it never approves their own
    # requests, and stops when they are deactivated (None: unknown, the rule
    # approves nothing).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "name"], name="unique_auto_rule_name_per_role"
            )
        ]

    def __str__(self) -> str:
        return self.name


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
        now = now or timezone.now()
        was_granted = Q(provisioned_at__isnull=False) | Q(decided_at__isnull=False)
        ended = Q(status__in=[RequestStatus.REVOKED, RequestStatus.EXPIRED]) | Q(
            status=RequestStatus.APPROVED, expires_at__lte=now
        )
        return cls.objects.filter(was_granted & ended)

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


class AuditEvent(models.Model):
    """Append-only: who did what to which object, before and after."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}"
        return f"{when} {self.actor_repr} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Audit events are append-only.")


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    REQUEST = "request", "Request access"
    APPROVE = "approve", "Approve and reject"


class ApiToken(models.Model):
    """A personal access token for the API and the `opsgate` CLI. Only the
    SHA-256 of the secret is stored (the token is random, 32 bytes: a slow
    hash adds nothing); the person sees the secret once."""

    MAX_DAYS = 90

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the token, to recognise it in lists.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > timezone.now() else "expired"


class DeviceAuthorization(models.Model):
    """`opsgate login`: the CLI holds the device code (stored hashed), the
    person types the user code on a signed-in page; the CLI's next poll
    receives a new token, once."""

    device_digest = models.CharField(max_length=64, unique=True)
    user_code = models.CharField(max_length=9, unique=True)
    client_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    denied_at = models.DateTimeField(null=True, blank=True)
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"device login {self.user_code}"

"""The desired state (DESIGN §2): AWS accounts, people and their IAM users,
projects, operation roles, access requests and the audit log. The worker
(provisioning) makes AWS match it."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
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
    # When opsgate found the role, or a policy it needs, missing in AWS; cleared
    # by the next successful sync. Its grants are not shown as active meanwhile.
    missing_since = models.DateTimeField(null=True, blank=True)
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
    # When the requester was reminded that this grant expires soon (sent once).
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    # When the worker applied the end of this grant to AWS (trust rewritten,
    # sessions denied and terminated): the cutoff for the session deny.
    trust_removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
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
    def is_active_grant(self) -> bool:
        return self.status == RequestStatus.APPROVED and (
            self.expires_at is None or self.expires_at > timezone.now()
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
        return cls.objects.filter(status=RequestStatus.APPROVED).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


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

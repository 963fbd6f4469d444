"""Projects, their operation roles (one IAM role per project and OS
user) and the roles' auto-approval rules."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from accounts_app import validation
from accounts_app.models.accounts import AwsAccount
from accounts_app.models.sync import SyncState


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
    # Readiness (issue 25): opsgate creates the OS run-as user on the
    # project's instances (SSM document opsgate-EnsureOsUser) instead of
    # only checking that it exists.
    create_os_users = models.BooleanField(default=False)
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

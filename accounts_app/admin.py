"""Django admin for the desired state. Changes that AWS must follow go
through the services (audit row, sync request), never a bare row edit."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from accounts_app import sync_requests
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
    SyncStatus,
)
from accounts_app.services import people, roles


@admin.display(description="AWS")
def sync_badge(obj) -> str:
    """Coloured by opsgate/admin.css (the CSP allows no style attributes):
    admins showing it use SyncBadgeAdmin."""
    status = obj.sync_status
    return format_html(
        '<span title="{}" class="sync-badge sync-badge-{}">{}</span>',
        obj.last_error or "",
        status,
        SyncStatus(status).label,
    )


class SyncBadgeAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["opsgate/admin.css"]}


@admin.action(description="Retry the AWS sync")
def retry_sync(modeladmin, request, queryset) -> None:
    for obj in queryset:
        sync_requests.sync_retry(obj=obj, actor=request.user)
    messages.success(request, f"Asked the worker to sync {queryset.count()} object(s).")


SYNC_READONLY = (
    "desired_version",
    "applied_version",
    "last_error",
    "error_is_permanent",
    "last_synced_at",
    "sync_requested_at",
    "sync_lease_until",
)


@admin.action(description="Reconcile now (compare with AWS, repair drift)")
def reconcile_now(modeladmin, request, queryset) -> None:
    try:
        sync_requests.reconcile_request()
        messages.success(request, "Asked the worker to reconcile every account.")
    except Exception as exc:  # the broker is down; the periodic run will come
        messages.error(request, f"Could not reach the worker: {exc}")


@admin.register(AwsAccount)
class AwsAccountAdmin(SyncBadgeAdmin):
    list_display = (
        "name",
        "account_id",
        "is_default",
        sync_badge,
        "last_synced_at",
        "last_reconciled_at",
    )
    readonly_fields = (
        *SYNC_READONLY,
        "baseline_fingerprint",
        "last_reconciled_at",
        "objects_missing_at",
        "reach_checked_at",
        "reach_error",
    )
    actions = [retry_sync, reconcile_now]

    def get_readonly_fields(self, request, obj=None):
        # The id and partition are in the ARN of every role and user of the
        # account: no path changes them in place (DESIGN §4.1).
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "account_id", "partition")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "allow_permanent")
    filter_horizontal = ("approvers",)
    # Approval rules change through the portal's project page (validated and
    # audited by accounts_app.services.rules).
    exclude = (
        "approvals_required",
        "ticket_pattern",
        "ticket_url_template",
        "allow_break_glass",
        "break_glass_people",
        "break_glass_hours",
        "break_glass_daily_cap",
        "break_glass_review_hours",
        "schedule_horizon_days",
        "slack_webhook_url",
        "teams_webhook_url",
    )
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # The name is the Project tag of its roles in AWS and the account
        # holds them: neither changes in place (DESIGN §4.1).
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "name", "account")


# What names a role in AWS (its name, account and, through the path setting,
# its ARN) or what it reaches (the Project and SSMSessionRunAs tags).
ROLE_IDENTITY = ("project", "account", "os_user", "role_name")


class OperationRoleForm(forms.ModelForm):
    """Cross-account users are checked as in the portal: each ARN, the size
    of the list, and the trust policy with the role's grant holders."""

    class Meta:
        model = OperationRole
        fields = ("project", "account", "os_user", "role_name", "extra_principal_arns")

    def clean_extra_principal_arns(self) -> list[str]:
        raw = self.data.get(self.add_prefix("extra_principal_arns"), "")
        if len(raw) > roles.MAX_PRINCIPALS_TEXT:
            raise ValidationError(roles.principals_too_long(len(raw)))
        value = self.cleaned_data.get("extra_principal_arns") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(
                'A JSON list of IAM user ARNs, e.g. ["arn:aws:iam::111122223333:'
                'user/alice"].'
            )
        return value

    def clean(self):
        data = super().clean()
        account = data.get("account")
        if "extra_principal_arns" in data and (account or self.instance.pk):
            try:
                data["extra_principal_arns"] = roles.role_principals_check(
                    role=self.instance,
                    extra_principal_arns=data["extra_principal_arns"],
                    account=account,
                    role_name=data.get("role_name", ""),
                )
            except ValidationError as exc:
                self.add_error("extra_principal_arns", exc.messages)
        return data


@admin.register(OperationRole)
class OperationRoleAdmin(SyncBadgeAdmin):
    form = OperationRoleForm
    list_display = ("role_name", "project", "os_user", sync_badge, "last_synced_at")
    list_filter = ("project",)
    search_fields = ("role_name", "project__name", "os_user")
    readonly_fields = (
        *SYNC_READONLY,
        "arn",
        "unique_id",
        "exists_in_aws",
        "missing_since",
    )
    actions = [retry_sync]

    def get_readonly_fields(self, request, obj=None):
        # A role's AWS identity never changes in place (DESIGN §4.1): a rename
        # or a move would leave the old IAM role trusting its people. A change
        # is a new role (add one) plus the end of the old one's grants.
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, *ROLE_IDENTITY)

    def save_model(self, request, obj, form, change) -> None:
        """A change of cross-account users goes through the service: trust
        size checked under the role's lock, audit row, AWS sync."""
        arns = obj.extra_principal_arns
        obj.extra_principal_arns = form.initial.get("extra_principal_arns", [])
        super().save_model(request, obj, form, change)
        try:
            roles.role_principals_set(
                role=obj, extra_principal_arns=arns, actor=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "requester",
        "role",
        "status",
        "expires_at",
        "provisioned_at",
        "decided_by",
    )
    list_filter = ("status", "role__project")
    search_fields = ("requester__name", "role__role_name")
    readonly_fields = (
        "status",
        "decided_by",
        "decided_at",
        "provisioned_at",
        "ended_at",
        "expires_at",
        "created_by",
    )

    def has_change_permission(self, request, obj=None) -> bool:
        # Status changes go through services (audit, AWS sync), not admin edits.
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_repr", "action", "object_repr", "project")
    list_filter = ("action",)
    search_fields = ("actor_repr", "object_repr", "action")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description="Offboard: end all access and delete the IAM user")
def offboard(modeladmin, request, queryset) -> None:
    done = 0
    for person in queryset:
        try:
            people.person_offboard(iam_user=person, actor=request.user)
            done += 1
        except ValidationError as exc:
            messages.warning(request, "; ".join(exc.messages))
    messages.success(request, f"Offboarded {done} person(s); the worker converges AWS.")


@admin.register(IamUser)
class IamUserAdmin(SyncBadgeAdmin):
    list_display = ("name", "email", "account", "state", sync_badge, "last_synced_at")
    list_filter = ("state", "account")
    search_fields = ("name", "email", "user__username")
    readonly_fields = (*SYNC_READONLY, "arn", "unique_id", "created_in_aws_at")
    actions = [retry_sync, offboard]

    def get_readonly_fields(self, request, obj=None):
        # The IAM user's name and account are its identity in AWS, and its
        # state changes only by offboarding (the action) or adding again.
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "user", "account", "name", "state")

    def save_model(self, request, obj, form, change) -> None:
        """The e-mail is the IAM user's tag: changed through the service
        (validated, audited, synced)."""
        if change and "email" in form.changed_data:
            email = obj.email
            obj.email = form.initial.get("email", "")
            super().save_model(request, obj, form, change)
            try:
                people.person_email_set(iam_user=obj, email=email, actor=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request) -> bool:
        # Adding a person creates a portal login and an IAM user: use the
        # opsgate people page (people.person_add), not a bare row.
        return False

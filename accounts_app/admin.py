from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from accounts_app import services
from accounts_app.models import IamUser
from provisioning.admin import SYNC_READONLY, SyncBadgeAdmin, retry_sync, sync_badge


@admin.action(description="Offboard: end all access and delete the IAM user")
def offboard(modeladmin, request, queryset) -> None:
    done = 0
    for person in queryset:
        try:
            services.person_offboard(iam_user=person, actor=request.user)
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

    def has_add_permission(self, request) -> bool:
        # Adding a person creates a portal login and an IAM user: use the
        # opsgate people page (services.person_add), not a bare row.
        return False

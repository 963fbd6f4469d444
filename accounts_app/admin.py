from django.contrib import admin

from accounts_app.models import IamUser
from provisioning.admin import SYNC_READONLY, retry_sync, sync_badge


@admin.register(IamUser)
class IamUserAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "account", "state", sync_badge, "last_synced_at")
    list_filter = ("state", "account")
    search_fields = ("name", "email", "user__username")
    readonly_fields = (*SYNC_READONLY, "arn", "unique_id", "created_in_aws_at")
    actions = [retry_sync]

    def has_add_permission(self, request) -> bool:
        # Adding a person creates a portal login and an IAM user: use the
        # opsgate people page (services.person_add), not a bare row.
        return False

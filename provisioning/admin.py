from django.contrib import admin

from provisioning.models import Drift


@admin.register(Drift)
class DriftAdmin(admin.ModelAdmin):
    """Read-only: reconcile writes these rows."""

    list_display = (
        "object_type",
        "name",
        "kind",
        "detail",
        "repairable",
        "first_seen",
        "last_seen",
        "repaired_at",
        "resolved_at",
    )
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "kind", "object_type")
    search_fields = ("name", "detail")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

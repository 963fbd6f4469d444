"""The sync state every object opsgate provisions carries: the worker
converges AWS to desired_version and records applied_version."""

from django.db import models
from django.db.models import F


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

"""Recording a sync's outcome on the object: success (the version applied) or
the error, permanent or to retry; and the settings and times the ending
steps share (provisioning.sync.ending and sessions)."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from provisioning.aws import AwsError, PermanentError

log = logging.getLogger(__name__)


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


def _margin() -> timedelta:
    return timedelta(seconds=_conf("IAM_PROPAGATION_SECONDS"))


def _window() -> timedelta:
    return timedelta(seconds=_conf("MAX_SESSION_DURATION"))


def _iso(when: datetime) -> str:
    return when.isoformat()


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _record_success(obj: Model, version: int, **fields: Any) -> None:
    obj.applied_version = max(obj.applied_version, version)
    obj.last_error = ""
    obj.error_is_permanent = False
    obj.last_synced_at = timezone.now()
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save(
        update_fields=[
            "applied_version",
            "last_error",
            "error_is_permanent",
            "last_synced_at",
            *fields,
        ]
    )


def _record_error(model: type[Model], pk: int, exc: AwsError) -> None:
    permanent = isinstance(exc, PermanentError)
    message = exc.message if permanent else f"Retrying: {exc.message}"
    with transaction.atomic():
        model.objects.filter(pk=pk).update(
            last_error=message[:2000], error_is_permanent=permanent
        )
    log.warning("sync of %s %s failed: %s", model.__name__, pk, message)

"""Audit rows, written in the same transaction as the change they record."""

from typing import Any

from django.db import transaction

from accounts_app.models import AuditEvent


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any,
    before: dict | None = None,
    after: dict | None = None,
    project: Any = None,
) -> AuditEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction it records")
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_repr=_actor_repr(actor),
        action=action,
        object_type=type(obj)._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        project=project,
        before=before,
        after=after,
    )


def _actor_repr(actor: Any) -> str:
    if actor is None:
        return "opsgate"
    if isinstance(actor, str):
        return actor
    return actor.get_username() if hasattr(actor, "get_username") else str(actor)

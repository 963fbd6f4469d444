"""What the checks produce (a Finding per difference, a Report per account),
and what reconcile reads from the findings afterwards."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Model

from accounts_app.models import IamUser, OperationRole
from provisioning.drift_checks.reading import quiet
from provisioning.models import DriftKind


@dataclass
class Finding:
    object_type: str
    name: str
    kind: str
    detail: str
    expected: Any = None
    actual: Any = None
    repairable: bool = True
    # The database object whose sync repairs it (AwsAccount, IamUser, role).
    obj: Model | None = None
    # A removal the sync does not do, run before it: fix(iam_client).
    fix: Callable[[Any], None] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.object_type, self.name, self.kind)


@dataclass
class Report:
    account: str
    found: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Stopped by a permanent error, no drift seen: their sync tried again.
    retried: list[str] = field(default_factory=list)
    # Another reconcile of the account was running: this one did nothing.
    busy: bool = False

    def summary(self) -> dict[str, Any]:
        summary = {
            "account": self.account,
            "drift": [f"{f.object_type} {f.name}: {f.kind}" for f in self.found],
            "repaired": self.repaired,
            "retried": self.retried,
            "errors": self.errors,
            "skipped_recent": self.skipped,
        }
        if self.busy:
            summary["busy"] = True
        return summary


def _drift_key(object_type: str, name: str) -> tuple[str, str]:
    # The group and the policies are one database object: the account.
    if object_type in ("group", "policy"):
        return ("baseline", "")
    return (object_type, name.lower())


def _object_key(obj: Model) -> tuple[str, str]:
    if isinstance(obj, IamUser):
        return ("user", obj.name.lower())
    if isinstance(obj, OperationRole):
        return ("role", obj.role_name.lower())
    return ("baseline", "")


def stopped_without_drift(
    objects: list[Model], findings: list[Finding], since: datetime
) -> list[Model]:
    """Objects a permanent error stopped that were checked and show no drift:
    the cause may have gone (AWS may already be right), so their sync is
    tried again. Those with drift are repaired, which retries them too."""
    drifted = {_drift_key(f.object_type, f.name) for f in findings}
    return [
        obj
        for obj in objects
        if obj.error_is_permanent
        and not quiet(obj, since)
        and _object_key(obj) not in drifted
    ]


def note_missing_roles(findings: list[Finding], now: datetime) -> None:
    """Grants on a role found deleted are not shown as active until a sync of
    the role succeeds."""
    missing = [
        f.obj.pk
        for f in findings
        if f.kind == DriftKind.MISSING and isinstance(f.obj, OperationRole)
    ]
    OperationRole.objects.filter(pk__in=missing, missing_since__isnull=True).update(
        missing_since=now
    )

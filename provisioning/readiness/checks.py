"""What every readiness check is made of: a Check (ok or not, with what to do),
the Outcome of a grant's checks, and the check AWS did not answer."""

from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from accounts_app.models import AccessRequest
from provisioning import policies
from provisioning.aws import AwsError, RetryLater

# Instance rows.
READY, OFFLINE, NOT_MANAGED, NO_OS_USER = (
    "ready",
    "offline",
    "not managed",
    "no OS user",
)


def conf(key: str) -> Any:
    return settings.OPSGATE[key]


@dataclass
class Check:
    key: str
    title: str
    ok: bool
    message: str
    fix: str = ""
    link: str = ""
    rows: list[dict] = field(default_factory=list)
    # May pass once IAM propagated a change made moments ago (or AWS answered
    # "retry later"): retried before it is reported.
    propagating: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outcome:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def propagating(self) -> bool:
        return any(not c.ok and c.propagating for c in self.checks)


def failed_call(key: str, title: str, exc: AwsError) -> Check:
    """A check AWS did not answer: never Ready, with AWS's message."""
    return Check(
        key,
        title,
        False,
        f"Could not check: {exc.message}",
        fix="opsgate's access to the account may be missing a permission, or "
        "AWS is unavailable. Press Check again later; an admin sees the same "
        "message.",
        propagating=isinstance(exc, RetryLater),
    )


def person_arn(grant: AccessRequest) -> str:
    person = grant.requester
    return person.arn or policies.user_arn(
        account_id=person.account.account_id,
        path=conf("IAM_PATH"),
        name=person.name,
        partition=person.account.partition,
    )

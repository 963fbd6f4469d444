"""Clients built on demand, per thread and account (opsgate's own credentials
or an assumed provisioner role), and botocore's errors mapped once."""

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings

from provisioning.aws.errors import (
    CREDENTIAL_CODES,
    DEPENDENCY_ACTIONS,
    EXPIRED_CODES,
    RETRYABLE_CODES,
    AwsError,
    DependencyMissing,
    PermanentError,
    RetryLater,
    error_code,
)
from provisioning.aws.observe import _notify

log = logging.getLogger(__name__)


def classify(exc: Exception, action: str) -> AwsError:
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        text = exc.response.get("Error", {}).get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"{action} failed: {code}: {text}".strip().rstrip(":")
        if code in EXPIRED_CODES:
            forget_clients()
            return RetryLater(
                f"{action} failed: {code}: temporary AWS credentials expired; "
                "retrying with fresh ones.",
                action=action,
                code=code,
            )
        if code in CREDENTIAL_CODES:
            return PermanentError(
                f"{action} failed: {code}: opsgate's AWS credentials are invalid or "
                "expired. Renew them and retry.",
                action=action,
                code=code,
            )
        if code in RETRYABLE_CODES or status >= 500:
            return RetryLater(message, action=action, code=code)
        if code == "NoSuchEntity" and action in DEPENDENCY_ACTIONS:
            return DependencyMissing(message, action=action, code=code)
        return PermanentError(message, action=action, code=code)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return PermanentError(
            f"{action} failed: no AWS credentials found. Configure the credential "
            "chain (environment, profile or instance role).",
            action=action,
            code="NoCredentials",
        )
    if isinstance(exc, BotoConnectionError):
        return RetryLater(
            f"{action} failed: cannot reach AWS ({type(exc).__name__}).",
            action=action,
            code="ConnectionError",
        )
    if isinstance(exc, BotoCoreError):
        return RetryLater(
            f"{action} failed: {type(exc).__name__}.",
            action=action,
            code=type(exc).__name__,
        )
    raise exc


@contextlib.contextmanager
def aws_action(action: str) -> Iterator[None]:
    """Map botocore errors raised inside into RetryLater or PermanentError."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, action) from exc


_local = threading.local()


def _config() -> Config:
    return Config(
        retries={
            "mode": "standard",
            "total_max_attempts": settings.OPSGATE["AWS_MAX_ATTEMPTS"],
        },
        connect_timeout=5,
        read_timeout=20,
    )


class _Bound:
    """Where a client is built: this thread's boto3 session (its service
    models are loaded once, not once per account) with the account's
    credentials (none: the default chain)."""

    def __init__(
        self,
        region: str,
        credentials: dict[str, str],
        expires_at: datetime | None = None,
    ) -> None:
        self.region = region
        self.credentials = credentials
        self.expires_at = expires_at

    def client(self, service: str, config: Config) -> Any:
        return _base_session().client(
            service, region_name=self.region, config=config, **self.credentials
        )


def _base_session() -> boto3.Session:
    base = getattr(_local, "session", None)
    if base is None:
        base = _local.session = boto3.Session()
    return base


def _session(account: Any, region: str = "") -> _Bound:
    """opsgate's own credentials, or (the account names a provisioner role)
    temporary credentials of that role, assumed with its external id."""
    region = region or settings.OPSGATE["REGION"]
    if account is None:
        return _Bound(region, {})
    if not account.assume_role_arn:
        _own_credentials_check(account)
        return _Bound(region, {})
    sts = _base_session().client(
        "sts", region_name=settings.OPSGATE["REGION"], config=_config()
    )
    kwargs = {"RoleArn": account.assume_role_arn, "RoleSessionName": "opsgate"}
    if account.external_id:
        kwargs["ExternalId"] = account.external_id
    with aws_action("sts:AssumeRole"):
        assumed = sts.assume_role(**kwargs)
    creds = assumed["Credentials"]
    # Never act in another account than the one named (a role ARN typed
    # wrong in the Django admin, which skips the services' checks).
    arn = assumed.get("AssumedRoleUser", {}).get("Arn", "")
    acting_in = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if acting_in and acting_in != account.account_id:
        raise PermanentError(
            f"sts:AssumeRole failed: WrongAccount: {account.assume_role_arn} acts "
            f"in account {acting_in}, not {account.account_id}. Fix the "
            "account's provisioner role ARN.",
            action="sts:AssumeRole",
            code="WrongAccount",
        )
    return _Bound(
        region,
        {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
        expires_at=creds.get("Expiration"),
    )


# Assumed-role clients are rebuilt this long before their credentials expire,
# so that a long reconcile never runs out mid-way.
REFRESH_MARGIN = timedelta(minutes=15)


def _now() -> datetime:
    return datetime.now(UTC)


def _renew_at(expires_at: datetime | None) -> datetime | None:
    """When to rebuild a client whose credentials expire at `expires_at`
    (None: never; the default chain refreshes its own credentials)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    now = _now()
    return expires_at - min(REFRESH_MARGIN, max(expires_at - now, timedelta(0)) / 2)


_own_account: dict[str, str] = {}
_own_account_lock = threading.Lock()


def own_account_id() -> str:
    """The account opsgate's own credentials belong to (sts:GetCallerIdentity),
    asked once per process: the credential chain does not move between
    accounts while it runs. Not observed, so call counts stay per object."""
    with _own_account_lock:
        if "id" not in _own_account:
            sts = _base_session().client(
                "sts", region_name=settings.OPSGATE["REGION"], config=_config()
            )
            with aws_action("sts:GetCallerIdentity"):
                _own_account["id"] = sts.get_caller_identity()["Account"]
        return _own_account["id"]


def _own_credentials_check(account: Any) -> None:
    """An account without a provisioner role is reached with opsgate's own
    credentials: only when they belong to it (a row added in the Django
    admin, which skips the services' checks, would otherwise have opsgate
    write into its own account in the other's name)."""
    own = own_account_id()
    if own != account.account_id:
        raise PermanentError(
            f"sts:GetCallerIdentity failed: WrongAccount: opsgate's own "
            f"credentials belong to account {own}, not {account.account_id}, and "
            "the account names no provisioner role. Give its provisioner role "
            "ARN (and external id).",
            action="sts:GetCallerIdentity",
            code="WrongAccount",
        )


def client(service: str, account: Any = None, *, region: str = "") -> Any:
    """A boto3 client for the account (in `region`, default OPSGATE_REGION),
    built on first use and kept per thread.

    Clients for assumed-role accounts are rebuilt REFRESH_MARGIN before their
    credentials' own `Expiration` (issue 21: a fixed 45 minutes let a client
    taken late run out mid-reconcile), and at once after ExpiredToken."""
    cache: dict = getattr(_local, "clients", None) or {}
    _local.clients = cache
    key = (
        service,
        getattr(account, "pk", None),
        getattr(account, "account_id", ""),
        getattr(account, "assume_role_arn", ""),
        getattr(account, "external_id", ""),
        region,
    )
    entry = cache.get(key)
    if entry is None or (entry[1] is not None and _now() >= entry[1]):
        bound = _session(account, region)
        built = bound.client(service, config=_config())
        built.meta.events.register("before-call", _notify)
        entry = (built, _renew_at(bound.expires_at))
        cache[key] = entry
    return entry[0]


def forget_clients() -> None:
    """Drop this thread's cached clients (their credentials expired); the
    next call assumes the role again."""
    _local.clients = {}


def reset_clients() -> None:
    """Forget cached clients and the session (tests switch endpoints and
    credentials)."""
    _local.clients = {}
    _local.session = None
    with _own_account_lock:
        _own_account.clear()


def caller_account_id() -> str:
    with aws_action("sts:GetCallerIdentity"):
        return client("sts").get_caller_identity()["Account"]


def account_identity(account: Any) -> str:
    """The account id opsgate acts in through its way into `account` (the
    provisioner role, or its own credentials): sts:GetCallerIdentity. Raises
    AwsError with AWS's message when the account cannot be reached."""
    with aws_action("sts:GetCallerIdentity"):
        return client("sts", account).get_caller_identity()["Account"]

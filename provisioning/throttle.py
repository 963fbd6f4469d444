"""Per-account backoff when AWS throttles (issue 26).

IAM's rate limits are per account: when one call of an account is throttled,
every task for that account would be throttled too. So the first throttled
task marks the account "throttled until T" in the shared cache (every worker
process sees it), with a backoff that doubles while the account keeps
throttling; tasks for that account wait until T without calling AWS, the sweep
skips it, and other accounts go on at full speed. A success in the account
resets the backoff.

The cache only saves calls: when it cannot be reached, nothing is throttled
(botocore's own retries and the task's backoff still apply)."""

import logging
import random
import time

from django.core.cache import cache

from provisioning.aws import THROTTLING_CODES

log = logging.getLogger(__name__)

BASE_SECONDS = 2.0
MAX_SECONDS = 120.0


def _until_key(account_pk: int) -> str:
    return f"opsgate:throttled:{account_pk}"


def _level_key(account_pk: int) -> str:
    return f"opsgate:throttled-level:{account_pk}"


def is_throttling(exc: Exception) -> bool:
    return getattr(exc, "code", "") in THROTTLING_CODES


def note(account_pk: int) -> float:
    """AWS throttled a call in the account: back it off. Returns the seconds
    until work for it may resume (jittered, doubling up to MAX_SECONDS)."""
    try:
        level = int(cache.get(_level_key(account_pk)) or 0)
        delay = min(MAX_SECONDS, BASE_SECONDS * 2**level)
        delay = random.uniform(delay / 2, delay)
        until = time.time() + delay
        current = float(cache.get(_until_key(account_pk)) or 0)
        if until > current:
            cache.set(_until_key(account_pk), until, timeout=int(delay) + 60)
        cache.set(_level_key(account_pk), level + 1, timeout=int(MAX_SECONDS * 5))
        return max(until, current) - time.time()
    except Exception as exc:  # noqa: BLE001 - the cache only saves calls
        log.warning("could not record throttling of account %s: %s", account_pk, exc)
        return 0.0


def account_state(account_pk: int) -> tuple[float, bool]:
    """How long work for the account still waits (0: go), and whether the
    account has a backoff a success resets (succeeded): one cache read."""
    try:
        found = cache.get_many([_until_key(account_pk), _level_key(account_pk)])
    except Exception:  # noqa: BLE001
        return 0.0, True
    until = float(found.get(_until_key(account_pk)) or 0)
    return max(0.0, until - time.time()), bool(found.get(_level_key(account_pk)))


def throttled_until(account_pks: list[int]) -> dict[int, float]:
    """{account pk: epoch seconds} of the accounts backing off now."""
    try:
        found = cache.get_many([_until_key(pk) for pk in account_pks])
    except Exception:  # noqa: BLE001
        return {}
    now = time.time()
    result = {}
    for pk in account_pks:
        until = float(found.get(_until_key(pk)) or 0)
        if until > now:
            result[pk] = until
    return result


def succeeded(account_pk: int) -> None:
    """A task of the account got through: the next throttling starts small."""
    try:
        cache.delete(_level_key(account_pk))
    except Exception:  # noqa: BLE001
        pass

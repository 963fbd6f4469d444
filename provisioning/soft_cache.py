"""opsgate's own read-through caches (EC2 instance lists, the audit page's
list of actions) save AWS calls or queries and nothing more: when the cache
cannot be reached, read the source instead of failing the page or the
approval, and leave the cache alone in this process for a while (a hung Redis
costs a timeout per call).

allauth's uses of the cache (used TOTP codes, failed sign-ins) and the API's
rate limit do not go through here on purpose: an unreachable cache refuses
them with a 503 (portal/cache_down.py)."""

import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)
PAUSE_SECONDS = 30
_paused_until = 0.0


def get(key: str):
    """The cached value, or None when missing or the cache is unreachable."""
    return _call("get", key)


def set(key: str, value, timeout: int) -> None:
    _call("set", key, value, timeout)


def _call(method: str, *args):
    global _paused_until
    if time.monotonic() < _paused_until:
        return None
    try:
        return getattr(cache, method)(*args)
    except Exception as exc:  # any backend's error: redis-py, database, …
        _paused_until = time.monotonic() + PAUSE_SECONDS
        log.warning(
            "Cache unreachable (%s); going without it for %d s",
            exc,
            PAUSE_SECONDS,
        )
        return None

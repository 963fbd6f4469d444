"""Counters for /metrics kept in the shared cache (issue 21): every gunicorn
worker and Celery process adds to the same number, so a scrape answered by any
worker sees the whole. A per-process prometheus_client Counter would show one
worker's share, different on each scrape. A cache that is flushed or down
loses counts (Prometheus reads a reset counter correctly); counting never
fails the request that is counted."""

import logging

from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

log = logging.getLogger(__name__)

PREFIX = "opsgate:counter:"
SIGN_IN_FAILURES = "sign_in_failures"


def counter_add(name: str, amount: int = 1) -> None:
    key = PREFIX + name
    try:
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)
    except Exception as exc:  # the cache is down: lose a count, not the request
        log.warning("could not count %s: %s", name, exc)


def value_set(name: str, value: float) -> None:
    try:
        cache.set(PREFIX + name, value, timeout=None)
    except Exception as exc:
        log.warning("could not record %s: %s", name, exc)


def values_read(names: list[str]) -> dict[str, float]:
    """The values of `names` (missing ones left out); {} when the cache is down."""
    try:
        found = cache.get_many([PREFIX + n for n in names])
    except Exception as exc:
        log.warning("could not read counters: %s", exc)
        return {}
    return {key[len(PREFIX) :]: value for key, value in found.items()}


@receiver(user_login_failed, dispatch_uid="opsgate-count-sign-in-failures")
def _sign_in_failed(sender, credentials=None, request=None, **kwargs) -> None:
    counter_add(SIGN_IN_FAILURES)

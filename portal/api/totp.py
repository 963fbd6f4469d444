"""The second factor on API decisions (approve, reject): a current TOTP code,
usable once, and a limit on wrong codes shared with the portal's sign-in.

Wrong codes count in allauth's own sign-in bucket (`login_failed` of
ACCOUNT_RATE_LIMITS, keyed per person as allauth's TOTP step keys it), in the
shared cache: whoever holds a token but not the authenticator gets no more
guesses than at the sign-in page, and guesses in either place count for both.
A right code empties the bucket, as at sign-in."""

import logging
import time
from contextlib import ExitStack

from allauth.core.internal import ratelimit as ratelimit_impl
from allauth.core.internal.ratelimit import apply_rate, cache_lock
from allauth.mfa.totp.internal.auth import TOTP
from django.core.cache import cache
from django.http import HttpRequest

from portal.api.core import ApiProblem, totp_authenticator

log = logging.getLogger(__name__)
ACTION = "login_failed"


def _key(user) -> str:
    # allauth.mfa.base.internal.flows.check_rate_limit uses this key.
    return f"mfa-auth-user-{user.pk}"


def _buckets(request: HttpRequest, user) -> list:
    """(rate, cache key) of each of the person's buckets of wrong codes."""
    return [
        (
            rate,
            ratelimit_impl.get_cache_key(
                request, app="allauth.account", action=ACTION, rate=rate, key=_key(user)
            ),
        )
        for rate in ratelimit_impl.get_rates(app="allauth.account", action=ACTION)
    ]


def retry_after(request: HttpRequest, user) -> int:
    """Seconds until the bucket that refused has room again (at least 1)."""
    now, wait = time.time(), 1.0
    for rate, cache_key in _buckets(request, user):
        history = cache.get(cache_key, [])
        if len(history) >= rate.amount:
            wait = max(wait, history[-1] + rate.duration - now)
    return int(wait + 0.999)


def check_totp(request: HttpRequest, code: str) -> None:
    """A long-lived token must not bypass the approver's second factor: every
    decision carries a current code, usable once (allauth's used-code cache,
    shared with the portal's login), and wrong codes lock deciding a while."""
    user = request.user
    authenticator = totp_authenticator(request)
    if authenticator is None:
        raise ApiProblem(403, "Set up an authenticator app in the portal first.")
    buckets = _buckets(request, user)
    # allauth's consume (each bucket locked, read, the try counted, written,
    # unlocked), but with both buckets locked and read at once and the code
    # checked under the locks: a try is counted only when the code is wrong
    # (a right one empties the buckets anyway), so a right code costs no write
    # when nothing was counted.
    with ExitStack() as locks:
        if not all(locks.enter_context(cache_lock(key)) for _, key in buckets):
            _locked(request, user)  # allauth's consume refuses when it cannot lock
        histories = cache.get_many([key for _, key in buckets])
        now, counted = time.time(), {}
        for rate, key in buckets:
            allowed, history = apply_rate(histories.get(key, []), now, rate)
            if not allowed:
                _count(counted, buckets)  # as consume: the buckets before it count
                _locked(request, user)
            counted[key] = history
        if not TOTP(authenticator).validate_code(code.strip()):
            _count(counted, buckets)
            message = "Wrong, expired or already used code: wait for the next one."
            raise ApiProblem(400, message, errors={"totp": [message]})
        if histories:
            cache.delete_many(list(histories))


def _count(histories: dict, buckets: list) -> None:
    """Write the buckets' histories at once, kept as long as the longest
    rate looks back (each read drops what is older than its own rate)."""
    if histories:
        cache.set_many(histories, max(rate.duration for rate, _ in buckets))


def _locked(request: HttpRequest, user) -> None:
    wait = retry_after(request, user)
    log.warning("TOTP on the API locked for %s: too many wrong codes", user)
    raise ApiProblem(
        429,
        "Too many wrong codes from your authenticator app: approving and "
        f"rejecting are locked; try again in {wait} s.",
        headers={"Retry-After": str(wait)},
    )

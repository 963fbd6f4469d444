"""The shared cache (Redis) does not answer: say so with a 503, never a 500.

Sign-in needs the cache (allauth keeps used TOTP codes and failed sign-ins
there; without it a code could be replayed and passwords guessed without
limit), and so does the API (its rate limit per token and per address). Those
requests are refused with a page in opsgate's layout, or an RFC 9457 problem
under /api/, that says what is wrong and what to do. Pages that only save work
with the cache read without it (`provisioning/soft_cache.py`, the audit
filter)."""

import json
import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30

# Django's Redis cache lets redis-py's errors through: refused, timed out,
# read-only replica, out of memory. Nothing else in a web process talks to
# Redis directly (the broker's errors are kombu's, and enqueueing never fails
# a request: provisioning/tasks.py).
CACHE_ERRORS = (RedisError,)

SIGN_IN = (
    "Signing in is unavailable for a moment: opsgate's shared cache, where it "
    "checks used authenticator codes and failed sign-ins, does not answer. "
    "Nothing was changed. Try again in a minute; if this lasts, tell your "
    "opsgate admins."
)
PAGE = (
    "This page is unavailable for a moment: it needs opsgate's shared cache, "
    "which does not answer. Nothing was changed. Try again in a minute; if "
    "this lasts, tell your opsgate admins."
)
API = (
    "The API is unavailable for a moment: it counts calls per token in "
    "opsgate's shared cache, which does not answer. Nothing was changed. "
    f"Retry in {RETRY_AFTER_SECONDS} s; if this lasts, tell your opsgate admins."
)
OPERATORS = (
    "The Redis server of CACHE_URL is down or refuses commands: start it (or "
    "point CACHE_URL at one that answers)."
)


def cache_down_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.error("shared cache unavailable: %s %s: %r", request.method, request.path, exc)
    if request.path.startswith("/api/"):
        # The API's one error format (RFC 9457), as portal.api.core.problem.
        body = {"type": "about:blank", "title": "Service unavailable"}
        body |= {"status": 503, "detail": API, "errors": {}}
        response = HttpResponse(
            json.dumps(body), status=503, content_type="application/problem+json"
        )
    else:
        text = SIGN_IN if request.path.startswith("/accounts/") else PAGE
        context = {"text": text, "operators": OPERATORS}
        response = render(request, "503.html", context, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class CacheDownMiddleware:
    """A view that needed the cache and could not reach it: 503, not 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, CACHE_ERRORS):
            return cache_down_response(request, exception)
        return None

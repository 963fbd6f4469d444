"""The API's plumbing: bearer-token authentication with scopes, a rate limit
per token in the shared cache, and one error format (RFC 9457
application/problem+json) for every failure."""

import json
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from redis.exceptions import RedisError

from accounts_app.models import ApiToken
from accounts_app.services import tokens
from portal.cache_down import cache_down_response
from portal.middleware import approver_and_totp

PROBLEM = "application/problem+json"


class Problem(Schema):
    """RFC 9457 problem details; `errors` maps a field to its messages."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: dict[str, list[str]] = {}


class ApiProblem(Exception):
    def __init__(self, status: int, detail: str, *, errors=None, headers=None):
        self.status, self.detail = status, detail
        self.errors, self.headers = errors or {}, headers or {}


TITLES = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    429: "Too many requests",
    500: "Server error",
}
ERRORS = {code: Problem for code in (400, 401, 403, 404, 429)}


class TokenAuth(HttpBearer):
    """`Authorization: Bearer ogp_…`. The request then acts as the token's
    owner (request.user), as a signed-in page would."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        _rate_limit(found)
        request.user = found.user
        return found


def _rate_limit(token: ApiToken) -> None:
    rate_limit(f"token:{token.pk}", settings.OPSGATE["API_RATE_PER_MINUTE"])


DEVICE_STARTS_PER_MINUTE = 10


def rate_limit(subject: str, limit: int) -> None:
    """At most `limit` calls a minute for `subject`, counted in the shared
    cache (every web worker sees the same count)."""
    window = int(time.time() // 60)
    count = _count(f"api-rate:{subject}:{window}")
    if count > limit:
        retry = 60 - int(time.time() % 60)
        raise ApiProblem(
            429,
            f"More than {limit} calls this minute; try again in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


def _count(key: str) -> int:
    """Add one to `key`'s count (kept two minutes) and return it. On Redis
    in one round trip: INCR starts a missing key at 1, EXPIRE lets it go
    (the cache's incr asks whether the key exists first: two, and four for
    the minute's first call)."""
    redis_cache = caches["default"]
    if isinstance(redis_cache, RedisCache):
        full_key = redis_cache.make_and_validate_key(key)
        client = redis_cache._cache.get_client(full_key, write=True)
        with client.pipeline(transaction=False) as pipe:
            count, _ = pipe.incr(full_key).expire(full_key, 120).execute()
        return count
    try:
        return cache.incr(key)  # there after the minute's first call
    except ValueError:
        cache.add(key, 0, timeout=120)
        try:
            return cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=120)
            return 1


def require_scope(request: HttpRequest, scope: str) -> None:
    token: ApiToken = request.auth
    if scope not in token.scopes:
        raise ApiProblem(
            403, f"This token lacks the “{scope}” scope. Create one that has it."
        )
    # A decision reads the caller's app first (its code is checked next):
    # having one answers the rule. Other calls ask "approves something?" and
    # "has an app?" in one statement, as every page does.
    if getattr(request, "opsgate_totp", None) is not None:
        return
    approver, has_app = approver_and_totp(request.user)
    if (request.user.is_staff or approver) and not has_app:
        raise ApiProblem(
            403,
            "Admins and approvers need an authenticator app before anything "
            "else: set it up in the portal first.",
        )


def require_staff(request: HttpRequest) -> None:
    require_scope(request, "read")
    if not request.user.is_staff:
        raise ApiProblem(403, "Only opsgate admins can read this.")


def totp_authenticator(request: HttpRequest):
    """The caller's TOTP authenticator, None without one: read once per
    request (the scope check asks first, a decision's code check next)."""
    from allauth.mfa.models import Authenticator

    if not hasattr(request, "opsgate_totp"):
        request.opsgate_totp = Authenticator.objects.filter(
            user=request.user, type=Authenticator.Type.TOTP
        ).first()
    return request.opsgate_totp


def problem(
    status: int, detail: str, *, errors=None, headers=None, title: str | None = None
) -> HttpResponse:
    import json

    body = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "errors": errors or {},
    }
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def validation_problem(exc: ValidationError) -> HttpResponse:
    """A service's ValidationError as the forms show it: keyed messages under
    their field, the others in `detail` (and under `__all__`)."""
    if hasattr(exc, "error_dict"):
        errors = {
            field: [m for e in errs for m in e.messages]
            for field, errs in exc.error_dict.items()
        }
    else:
        errors = {"__all__": list(exc.messages)}
    detail = " ".join(m for msgs in errors.values() for m in msgs)
    return problem(400, detail, errors=errors)


def _nul_path(value, path: str = "") -> str | None:
    """Where a NUL character hides in parsed JSON (a key or a string), or None."""
    if isinstance(value, str):
        return path or "__all__" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path or "__all__"
            found = _nul_path(item, str(key))
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = _nul_path(item, path)
            if found:
                return found
    return None


class StrictJsonParser(Parser):
    """JSON object bodies without NUL characters: PostgreSQL cannot store
    them, and `"\u0000"` in a reason answered a 500 HTML page (issue 21)."""

    def parse_body(self, request: HttpRequest):
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiProblem(400, "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            # Every body here is an object; ninja would read a list or a
            # number as "no fields given" and apply the defaults (issue 22).
            raise ApiProblem(400, "The body must be a JSON object.")
        field = _nul_path(data)
        if field:
            message = "Text may not contain NUL characters (\\u0000)."
            raise ApiProblem(400, message, errors={field: [message]})
        return data


def server_error(request: HttpRequest) -> HttpResponse:
    """500 as a problem under /api/ (clients parse JSON), the page elsewhere."""
    if request.path.startswith("/api/"):
        return problem(500, "Something went wrong on our side; it was logged.")
    from django.views.defaults import server_error as page

    return page(request)


class OpsgateApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Error responses are documented as application/problem+json."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(code) >= 400 and "application/json" in content:
                        content[PROBLEM] = content.pop("application/json")
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        """`portal_api_views_<function>` whichever module of portal.api holds
        the operation: the ids from before the operations were split out of
        portal/api/views.py, which clients generated from the schema use (so
        an operation's function name must be unique across the modules)."""
        return f"portal_api_views_{operation.view_func.__name__}"


def install_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ApiProblem)
    def _api_problem(request, exc: ApiProblem):
        return problem(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)

    @api.exception_handler(ValidationError)
    def _validation(request, exc: ValidationError):
        return validation_problem(exc)

    @api.exception_handler(PermissionDenied)
    def _denied(request, exc: PermissionDenied):
        return problem(403, str(exc) or "You may not do this.")

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return problem(404, "No such object, or not one you can see.")

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request, exc):
        return problem(
            401,
            "Missing, unknown, expired or revoked token. Create one in the "
            "portal (API tokens) or run `opsgate login`.",
            headers={"WWW-Authenticate": 'Bearer realm="opsgate"'},
        )

    @api.exception_handler(NinjaValidationError)
    def _input(request, exc: NinjaValidationError):
        errors: dict[str, list[str]] = {}
        for error in exc.errors:
            names = [
                str(p)
                for p in error.get("loc", [])
                if p not in ("body", "query", "path", "payload", "filters")
                and not isinstance(p, int)
            ]
            field = names[-1] if names else "__all__"
            errors.setdefault(field, []).append(str(error.get("msg", "Invalid.")))
        detail = " ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        return problem(400, detail, errors=errors)

    @api.exception_handler(HttpError)
    def _http(request, exc: HttpError):
        cause = exc.__cause__  # ninja wraps the parser's errors in "Cannot parse"
        if isinstance(cause, ApiProblem):
            return _api_problem(request, cause)
        return problem(exc.status_code, str(exc))

    @api.exception_handler(RedisError)
    def _cache_down(request, exc: RedisError):
        # The rate limit (and allauth's used TOTP codes) need the shared
        # cache: 503 with what to do, in DEBUG too (ninja would answer 500).
        return cache_down_response(request, exc)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """404 for URLs no view matched: a problem under /api/, the page elsewhere."""
    if request.path.startswith("/api/"):
        return problem(404, "No such API endpoint.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)

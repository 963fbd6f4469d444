"""Typed helpers for reading settings from the environment."""

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str | None = None, *, required: bool = False) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default or ""
    return value


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a whole number, not {value!r}."
        ) from None


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Caches every process shares. allauth keeps used TOTP codes and failed-login
# counts in the cache, so a per-process cache lets a code through once per
# gunicorn worker and multiplies the login rate limit by the number of workers.
SHARED_CACHES = ("redis://", "rediss://", "db://")
PER_PROCESS_CACHES = ("locmem://", "dummy://")
DEFAULT_CACHE_TABLE = "opsgate_cache"


def cache_from_url(url: str) -> dict:
    """CACHES["default"] from a URL.

    redis://host:6379/1 (or rediss://): Django's Redis cache; `?key_prefix=x`
    sets KEY_PREFIX, the other query arguments go to redis-py.
    db:// or db://<table>: a table in the database (default opsgate_cache;
    `manage.py createcachetable` creates it).
    locmem:// and dummy://: per process, for development only.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        location = urlunsplit(
            parts._replace(query=urlencode([q for q in query if q[0] != "key_prefix"]))
        )
        config = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            # Fail fast when Redis is down or hung instead of holding the request.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        prefixes = [value for key, value in query if key == "key_prefix"]
        if prefixes:
            config["KEY_PREFIX"] = prefixes[-1]
        return config
    if scheme == "db" and not parts.path.strip("/"):
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": parts.netloc or DEFAULT_CACHE_TABLE,
        }
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    raise ImproperlyConfigured(
        f"CACHE_URL must start with {', '.join(SHARED_CACHES + PER_PROCESS_CACHES)}"
        f", not {url!r}."
    )


def envcache(name: str, *, production: bool) -> dict:
    """The default cache from the URL in `name` (unset: the database table).
    Production refuses a per-process cache."""
    url = envstr(name, "db://")
    config = cache_from_url(url)
    if production and url.lower().startswith(PER_PROCESS_CACHES):
        raise ImproperlyConfigured(
            f"{name}={url} keeps a separate cache in each process: with several "
            "web workers a TOTP code could be used once per worker and failed "
            f"sign-ins would be counted per worker. Set {name}=redis://host:6379/1 "
            "(or db:// for a table in the database, created by migrate)."
        )
    return config

"""CACHE_URL (issue 9): Redis or a database table, shared by every process;
production refuses a cache kept per process."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import cache_from_url, envcache
from tests.test_deploy_settings import PRODUCTION, manage

REDIS = "django.core.cache.backends.redis.RedisCache"
DATABASE = "django.core.cache.backends.db.DatabaseCache"
TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "redis://redis:6379/1",
            {"BACKEND": REDIS, "LOCATION": "redis://redis:6379/1", "OPTIONS": TIMEOUTS},
        ),
        (
            "rediss://:pw@cache.example.com:6380/2?key_prefix=opsgate&ssl_cert_reqs=none",
            {
                "BACKEND": REDIS,
                "LOCATION": "rediss://:pw@cache.example.com:6380/2?ssl_cert_reqs=none",
                "OPTIONS": TIMEOUTS,
                "KEY_PREFIX": "opsgate",
            },
        ),
        ("db://", {"BACKEND": DATABASE, "LOCATION": "opsgate_cache"}),
        ("db://web_cache", {"BACKEND": DATABASE, "LOCATION": "web_cache"}),
        (
            "locmem://",
            {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        ),
        ("dummy://", {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}),
    ],
)
def test_cache_url_gives_the_cache_settings(url, expected):
    assert cache_from_url(url) == expected


@pytest.mark.parametrize(
    "url", ["memcached://cache:11211", "redis", "db://a/b", "/var/cache"]
)
def test_an_unknown_cache_url_says_what_is_accepted(url):
    with pytest.raises(
        ImproperlyConfigured, match="CACHE_URL must start with redis://"
    ):
        cache_from_url(url)


def test_without_cache_url_the_cache_is_a_database_table(monkeypatch):
    monkeypatch.delenv("CACHE_URL", raising=False)
    assert envcache("CACHE_URL", production=True) == cache_from_url("db://")
    assert envcache("CACHE_URL", production=False)["BACKEND"] == DATABASE


@pytest.mark.parametrize("url", ["locmem://", "dummy://", "LOCMEM://"])
def test_production_refuses_a_cache_kept_per_process(monkeypatch, url):
    monkeypatch.setenv("CACHE_URL", url)
    assert envcache("CACHE_URL", production=False)  # fine for development
    with pytest.raises(ImproperlyConfigured, match="separate cache in each process"):
        envcache("CACHE_URL", production=True)


def test_production_start_up_stops_on_a_per_process_cache():
    result = manage("check", env={**PRODUCTION, "CACHE_URL": "locmem://"})
    assert result.returncode != 0
    assert "CACHE_URL=locmem:// keeps a separate cache in each process" in result.stderr


def test_production_starts_with_redis_or_the_database_cache():
    for url in ("redis://redis:6379/1", "db://"):
        result = manage("check", env={**PRODUCTION, "CACHE_URL": url})
        assert result.returncode == 0, result.stderr


def test_docker_compose_gives_the_web_workers_redis_apart_from_the_broker():
    import yaml

    from tests.test_deploy_settings import ROOT

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["web"]["environment"]
    assert cache_from_url(env["CACHE_URL"])["BACKEND"] == REDIS
    # Clearing a Redis cache empties its whole database number.
    assert (
        env["CACHE_URL"].rsplit("/", 1)[1] != env["CELERY_BROKER_URL"].rsplit("/", 1)[1]
    )


# --- The cache unreachable ----------------------------------------------------


@pytest.fixture
def cache_down(settings, monkeypatch):
    """The cache on a Redis port where nothing listens."""
    import socket

    from provisioning import soft_cache

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings.CACHES = {"default": cache_from_url(f"redis://127.0.0.1:{port}/1")}
    monkeypatch.setattr(soft_cache, "_paused_until", 0.0)


@pytest.mark.django_db
def test_approval_and_my_access_work_without_the_cache(
    aws_env, cache_down, login, carol, bob, deploy_role, caplog
):
    from django.urls import reverse

    from accounts_app.models import RequestStatus
    from accounts_app.services import access_requests

    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="release",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    # The approval reads no cache (the trust quota is stored on the account);
    # My access caches the EC2 instances and carries on without the cache.
    assert "Cache unreachable" not in caplog.text
    assert login(carol).get(reverse("home")).status_code == 200
    assert "Cache unreachable" in caplog.text


@pytest.mark.django_db
def test_sign_in_is_refused_with_a_503_page_without_the_cache(
    cache_down, client, carol
):
    """Used codes and failed sign-ins cannot be checked: no sign-in, and a
    page that says why (issue 21: it was a 500)."""
    from django.urls import reverse

    carol.user.set_password("a long test password")
    carol.user.save()
    response = client.post(
        reverse("account_login"),
        {"login": "carol@example.com", "password": "a long test password"},
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.templates[0].name == "503.html"
    assert "Signing in is unavailable for a moment" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_api_answers_503_problem_without_the_cache(cache_down, carol):
    """The rate limit per token lives in the cache: refused, in the API's
    format, and nothing done."""
    from django.test import Client

    from accounts_app.services import tokens

    _, secret = tokens.token_create(
        owner=carol.user, name="t", scopes=["read"], days=1, actor=carol.user
    )
    response = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/me")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Service unavailable"
    assert "shared cache" in response.json()["detail"]


@pytest.mark.django_db
def test_audit_page_reads_its_filter_without_the_cache(cache_down, login, alice):
    from django.urls import reverse

    response = login(alice).get(reverse("audit"))
    assert response.status_code == 200

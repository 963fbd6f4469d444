"""Redis, the shared cache and the broker, is down under a running portal
(issue 21, point 3). Reported: `POST /accounts/login/` and `GET /api/v1/me`
answered 500. Sign-in and the API need the cache (used TOTP codes and failed
sign-ins; the rate limit per token) and refuse with a 503 that says what is
wrong and what to do; the pages of people already signed in keep working, an
approval included (its work is enqueued later by the sweep, DESIGN §4; its
mail is sent by the web process, as nothing can be queued for the worker).

gunicorn serves the test database with CACHE_URL and CELERY_BROKER_URL on a
redis-server of the test's own (database numbers 1 and 0, as deployed), which
the test stops with SIGTERM."""

import http.client
import json

import pytest
from django.conf import settings
from django.test import Client

from accounts_app.models import AccessRequest, OperationRole, RequestStatus, SyncStatus
from accounts_app.services import tokens
from tests.conftest import give_totp
from tests.helpers import request
from tests.workers import RedisServer, Visitor, Web

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a long test password"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def portal(redis_server, tmp_path):
    web = Web(
        workers=1,
        env={
            "CACHE_URL": redis_server.url(1),
            "CELERY_BROKER_URL": redis_server.url(0),
            "DJANGO_DEBUG": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        },
        name="gunicorn-redis-down",
    )
    yield web.wait_ready()
    web.stop()


def signed_in(portal, person) -> Visitor:
    """A browser of `person` with a session made before Redis went down
    (sessions live in the database)."""
    client = Client()
    client.force_login(person.user)
    visitor = Visitor(portal)
    name = settings.SESSION_COOKIE_NAME
    visitor.cookies[name] = client.cookies[name].value
    return visitor


def api_get(portal, path: str, secret: str) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}", "Host": "127.0.0.1"}
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response.status, response.getheader("Content-Type"), json.loads(body)


def test_with_redis_down_sign_in_and_the_api_answer_503_and_signed_in_pages_work(
    redis_server, portal, carol, bob, alice, deploy_role, tmp_path
):
    carol.user.set_password(PASSWORD)
    carol.user.save()
    give_totp(bob.user)
    give_totp(alice.user)
    pending = request(carol, deploy_role)
    _, secret = tokens.token_create(
        owner=carol.user, name="cli", scopes=["read"], days=1, actor=carol.user
    )
    carols, bobs, alices = (signed_in(portal, p) for p in (carol, bob, alice))
    assert Visitor(portal).sign_in("carol@example.com", PASSWORD).status == 302
    assert api_get(portal, "/api/v1/me", secret)[0] == 200

    redis_server.stop()

    # Sign-in is refused, with a page in opsgate's layout that says why.
    answer = Visitor(portal).sign_in("carol@example.com", PASSWORD)
    assert answer.status == 503, answer.text
    assert "Unavailable for a moment · opsgate</title>" in answer.text
    assert "Signing in is unavailable for a moment" in answer.text
    assert "Try again in a minute" in answer.text
    assert "CACHE_URL" in answer.text  # what operators should look at

    # The API (its rate limit lives in the cache): an RFC 9457 problem.
    status, content_type, body = api_get(portal, "/api/v1/me", secret)
    assert (status, content_type) == (503, "application/problem+json"), body
    assert body["status"] == 503 and body["title"] == "Service unavailable"
    assert "shared cache" in body["detail"]

    # Signed-in pages that only save work with the cache keep working.
    for visitor, path in (
        (carols, "/"),
        (carols, "/request/"),
        (carols, "/tokens/"),
        (bobs, "/approvals/"),
        (alices, "/dashboard/"),
        (alices, "/audit/"),
        (alices, "/people/"),
    ):
        answer = visitor.request("GET", path)
        assert answer.status == 200, (path, answer.status, answer.text[:300])

    # Approving with the broker down too: saved, the sweep enqueues it later.
    role = deploy_role
    form = {"decision": "approve", "comment": ""}
    form |= {"role": role.pk, "project": role.project_id}
    answer = bobs.request("POST", f"/approvals/{pending.pk}/decide", form)
    assert (answer.status, answer.location) == (302, "/approvals/"), answer.text
    assert AccessRequest.objects.get(pk=pending.pk).status == RequestStatus.APPROVED
    assert OperationRole.objects.get(pk=role.pk).sync_status == SyncStatus.PENDING
    # Its mail could not be queued for the worker: the web process sent it.
    mails = "".join(p.read_text() for p in (tmp_path / "mail").glob("*"))
    assert "Your request for payments as deploy was approved" in mails
    assert "sending notification request_decided now" in portal.log()
    assert "Internal Server Error" not in portal.log()

"""What an approval costs (issue 24): the API approve's queries and the rate
limit's Redis round trips, each cut without loosening a check (who may
decide, the quorum, the limit itself)."""

import json
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts_app.models import AccessRequest, RequestStatus
from accounts_app.services import access_requests, rules, tokens
from portal.api import core
from tests.conftest import give_totp, totp_code
from tests.helpers import request

pytestmark = pytest.mark.django_db


def _approve_client(person) -> Client:
    give_totp(person.user)
    _, secret = tokens.token_create(
        owner=person.user, name="t", scopes=["approve"], days=1, actor=person.user
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_an_api_approval_costs_twelve_queries(
    carol, bob, deploy_role, django_assert_num_queries
):
    """The token (read, last use), the authenticator, may I see it, the
    role locked with whether I decide it, the request locked, my approval,
    the person's current grant, the role's holders, the request, the audit
    row, the role's sync: 12 (13 before the role lock answered who decides),
    plus the savepoint and its release of the test's transaction."""
    req = request(carol, deploy_role)
    api = _approve_client(bob)
    carol.arn = "arn:aws:iam::123456789012:user/opsgate/carol"  # as once synced
    carol.save(update_fields=["arn"])
    with django_assert_num_queries(12 + 2):
        response = api.post(
            f"/api/v1/approvals/{req.pk}/approve",
            json.dumps({"totp": totp_code()}),
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_a_project_approver_cannot_decide_a_role_whose_approvers_replace_them(
    decide, alice, carol, bob, dave, deploy_role
):
    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    req = request(carol, deploy_role)
    service = getattr(access_requests, f"access_request_{decide}")
    with pytest.raises(PermissionDenied):
        service(access_request=req, approver=bob.user, comment="no")
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING
    decided = service(access_request=req, approver=dave.user, comment="ok")
    assert decided.status != RequestStatus.PENDING


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_an_approver_of_another_project_cannot_decide(
    decide, carol, erin, other_project, deploy_role
):
    req = request(carol, deploy_role)
    service = getattr(access_requests, f"access_request_{decide}")
    with pytest.raises(PermissionDenied):
        service(access_request=req, approver=erin.user, comment="no")
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


def test_a_quorum_still_counts_only_current_approvers(
    alice, carol, bob, dave, payments, deploy_role
):
    """With a quorum the decision reads every approver (the others'
    approvals count only while they still approve)."""
    payments.approvers.add(dave.user)
    rules.role_rules_set(actor=alice.user, role=deploy_role, approvals_required=2)
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    payments.approvers.remove(bob.user)
    access_requests.access_request_approve(access_request=req, approver=dave.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING


@pytest.fixture
def redis_cache():
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        pytest.skip("needs the Redis cache (CACHE_URL=redis://…, scripts/test.sh)")
    return cache


def test_the_rate_limit_counts_in_one_redis_round_trip(redis_cache, monkeypatch):
    client = redis_cache._cache.get_client(write=True)
    trips: list = []
    command, pipeline = type(client).execute_command, type(client.pipeline()).execute

    def counted_command(self, *args, **kwargs):
        trips.append(args[0])
        return command(self, *args, **kwargs)

    def counted_pipeline(self, *args, **kwargs):
        trips.append("pipeline")
        return pipeline(self, *args, **kwargs)

    monkeypatch.setattr(type(client), "execute_command", counted_command)
    monkeypatch.setattr(type(client.pipeline()), "execute", counted_pipeline)
    monkeypatch.setattr(core, "time", SimpleNamespace(time=lambda: 1.8e9 + 1))
    core.rate_limit("cost-test", 2)  # the minute's first call
    core.rate_limit("cost-test", 2)
    assert trips == ["pipeline", "pipeline"]
    with pytest.raises(core.ApiProblem) as refused:
        core.rate_limit("cost-test", 2)
    assert refused.value.status == 429
    key = f"api-rate:cost-test:{int(1.8e9 // 60)}"
    assert redis_cache.get(key) == 3
    assert 0 < client.ttl(redis_cache.make_and_validate_key(key)) <= 120

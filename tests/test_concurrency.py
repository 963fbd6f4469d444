"""Races on PostgreSQL row locks: double clicks, two approvers, approve against
cancel or revoke, and the worker's re-check of the approver."""

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from accounts_app.models import AccessRequest, AuditEvent, OperationRole, RequestStatus
from accounts_app.services import access_requests
from provisioning import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor == 'sqlite'", reason="row locks need PostgreSQL"
    ),
]


def race(*calls):
    """Run the calls at the same moment in threads; return results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is the result
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def pending(aws_env, carol, bob, deploy_role):
    return access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
    )


def trust_users(iam, role_name):
    try:
        doc = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    principals = doc["Statement"][0]["Principal"]["AWS"]
    principals = [principals] if isinstance(principals, str) else principals
    return sorted(p.rsplit("/", 1)[1] for p in principals)


def test_a_double_clicked_approve_makes_one_decision(pending, bob, deploy_role):
    version = deploy_role.desired_version
    results = race(
        lambda: access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        ),
        lambda: access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        ),
    )
    assert sorted(type(r).__name__ for r in results) == [
        "AccessRequest",
        "ValidationError",
    ]
    assert AuditEvent.objects.filter(action="request.approve").count() == 1
    assert OperationRole.objects.get(pk=deploy_role.pk).desired_version == version + 1


def test_two_approvers_at_once_make_one_decision(pending, bob, erin, payments):
    payments.approvers.add(erin.user)
    results = race(
        lambda: access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        ),
        lambda: access_requests.access_request_reject(
            access_request=pending, approver=erin.user, comment="no"
        ),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], ValidationError)
    assert (
        AuditEvent.objects.filter(
            action__in=["request.approve", "request.reject"]
        ).count()
        == 1
    )


def test_approve_racing_cancel_ends_consistent_in_database_and_aws(
    pending, carol, bob, deploy_role, iam
):
    results = race(
        lambda: access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        ),
        lambda: access_requests.access_request_cancel(
            access_request=pending, actor=carol.user
        ),
    )
    assert sum(isinstance(r, Exception) for r in results) == 1
    sync.role_sync(role_id=deploy_role.pk)
    status = AccessRequest.objects.get(pk=pending.pk).status
    expected = {RequestStatus.APPROVED: ["carol"], RequestStatus.CANCELLED: None}
    assert trust_users(iam, deploy_role.role_name) == expected[status]


def test_revoke_racing_the_worker_ends_with_the_user_out_of_the_trust(
    pending, bob, carol, deploy_role, iam
):
    access_requests.access_request_approve(access_request=pending, approver=bob.user)
    sync.role_sync(role_id=deploy_role.pk)
    results = race(
        lambda: sync.role_sync(role_id=deploy_role.pk),
        lambda: access_requests.access_request_revoke(
            access_request=pending, actor=carol.user
        ),
    )
    assert not any(isinstance(r, Exception) for r in results), results
    sync.role_sync(role_id=deploy_role.pk)  # what the revoke enqueued
    assert AccessRequest.objects.get(pk=pending.pk).status == RequestStatus.REVOKED
    assert trust_users(iam, deploy_role.role_name) is None


def test_the_worker_refuses_a_grant_whose_approver_lost_the_right(
    pending, bob, deploy_role, payments, iam
):
    access_requests.access_request_approve(access_request=pending, approver=bob.user)
    payments.approvers.remove(bob.user)
    sync.role_sync(role_id=deploy_role.pk)
    grant = AccessRequest.objects.get(pk=pending.pk)
    assert grant.status == RequestStatus.REVOKED
    assert "bob may no longer approve payments" in grant.end_comment
    assert grant.ended_by is None
    assert trust_users(iam, deploy_role.role_name) is None
    assert AuditEvent.objects.filter(action="request.revoke", actor=None).count() == 1


def test_nobody_approves_for_a_project_they_left(pending, bob, payments):
    payments.approvers.remove(bob.user)
    with pytest.raises(PermissionDenied):
        access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        )

"""Issue 13 races on PostgreSQL row locks: two approvers completing a quorum
at the same moment."""

import pytest
from django.db import connection  # noqa: F401 - the skipif condition

from accounts_app.models import AccessRequest, Approval, AuditEvent, RequestStatus
from accounts_app.services import access_requests, rules
from tests.helpers import request
from tests.test_concurrency import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor == 'sqlite'", reason="row locks need PostgreSQL"
    ),
]


def test_two_approvers_completing_a_quorum_at_once_make_one_grant(
    payments, alice, bob, carol, dave, erin, deploy_role
):
    payments.approvers.add(dave.user, erin.user)
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    req = request(carol, deploy_role)
    access_requests.access_request_approve(access_request=req, approver=bob.user)
    version = type(deploy_role).objects.get(pk=deploy_role.pk).desired_version
    results = race(
        lambda: access_requests.access_request_approve(
            access_request=req, approver=dave.user
        ),
        lambda: access_requests.access_request_approve(
            access_request=req, approver=erin.user
        ),
    )
    # The second to take the lock finds the request approved already.
    assert sorted(type(r).__name__ for r in results) == [
        "AccessRequest",
        "ValidationError",
    ]
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert Approval.objects.filter(access_request=req).count() == 2
    assert AuditEvent.objects.filter(action="request.approve").count() == 1
    role = type(deploy_role).objects.get(pk=deploy_role.pk)
    assert role.desired_version == version + 1


def test_two_first_approvals_of_a_quorum_of_two_at_once_approve_it(
    payments, alice, carol, dave, erin, deploy_role
):
    payments.approvers.add(dave.user, erin.user)
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    req = request(carol, deploy_role)
    results = race(
        lambda: access_requests.access_request_approve(
            access_request=req, approver=dave.user
        ),
        lambda: access_requests.access_request_approve(
            access_request=req, approver=erin.user
        ),
    )
    assert not [r for r in results if isinstance(r, Exception)]
    req = AccessRequest.objects.get(pk=req.pk)
    assert req.status == RequestStatus.APPROVED
    assert AuditEvent.objects.filter(action="request.approval").count() == 1
    assert AuditEvent.objects.filter(action="request.approve").count() == 1


def test_break_glass_racing_a_revoke_of_the_same_grant_stays_consistent(
    aws_env, payments, alice, bob, carol, deploy_role, iam
):
    """carol breaks glass again while bob revokes her current break-glass
    grant: either the new use is refused (the grant was still active) or it
    follows the revoke; never two grants, and AWS matches the database."""
    from accounts_app.services import break_glass
    from provisioning import sync
    from tests.test_concurrency import trust_users

    break_glass.break_glass_set(
        actor=alice.user, project=payments, allow=True, people=[carol.user]
    )
    first = break_glass.break_glass_activate(
        requester=carol, role=deploy_role, reason="down", actor=carol.user
    )
    results = race(
        lambda: break_glass.break_glass_activate(
            requester=carol, role=deploy_role, reason="still down", actor=carol.user
        ),
        lambda: access_requests.access_request_revoke(
            access_request=first, actor=bob.user
        ),
    )
    assert not isinstance(results[1], Exception)
    assert AccessRequest.objects.get(pk=first.pk).status == RequestStatus.REVOKED
    active = list(AccessRequest.active_grants().filter(requester=carol))
    if isinstance(results[0], Exception):
        assert "cannot extend" in str(results[0])
        assert active == []
    else:
        assert [g.pk for g in active] == [results[0].pk]
    sync.role_sync(role_id=deploy_role.pk)
    assert trust_users(iam, deploy_role.role_name) == (["carol"] if active else None)

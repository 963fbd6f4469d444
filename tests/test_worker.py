"""Through a real Celery worker process and the configured broker (Redis in CI):
approving a request ends with the user in the role's trust and the grant active."""

import pytest

from accounts_app.models import AccessRequest, OperationRole, SyncStatus
from accounts_app.services import access_requests, people
from provisioning import policies
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def trust_principals(iam, role_name):
    document = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    principals = document["Statement"][0]["Principal"]["AWS"]
    return sorted([principals] if isinstance(principals, str) else principals)


def test_approval_through_the_worker_ends_with_the_user_in_the_trust(
    worker, iam, carol, bob, deploy_role
):
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="release",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=req, approver=bob.user)

    assert wait_for(lambda: AccessRequest.objects.get(pk=req.pk).provisioned_at), (
        "the grant never became active"
    )
    assert trust_principals(iam, "payments-deploy") == [
        "arn:aws:iam::123456789012:user/opsgate/carol"
    ]
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert role.sync_status == SyncStatus.IN_SYNC
    tags = iam.get_role(RoleName="payments-deploy")["Role"]["Tags"]
    assert policies.tag_dict(tags)["Project"] == "payments"


def test_concurrent_approvals_on_one_role_lose_nobody(
    worker, iam, account, bob, deploy_role
):
    requesters = [
        people.person_add(actor=None, account=account, iam_user_name=f"op{i}")
        for i in range(8)
    ]
    grants = []
    for person in requesters:
        req = access_requests.access_request_create(
            requester=person,
            role=deploy_role,
            reason="on call",
            duration_hours=8,
            actor=person.user,
        )
        grants.append(
            access_requests.access_request_approve(
                access_request=req, approver=bob.user
            )
        )

    assert wait_for(
        lambda: (
            not AccessRequest.objects.filter(
                pk__in=[g.pk for g in grants], provisioned_at__isnull=True
            ).exists()
            and OperationRole.objects.get(pk=deploy_role.pk).sync_status
            == SyncStatus.IN_SYNC
        ),
        timeout=90,
    )
    assert trust_principals(iam, "payments-deploy") == sorted(
        f"arn:aws:iam::123456789012:user/opsgate/op{i}" for i in range(8)
    )

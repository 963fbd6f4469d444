"""The database failing in the middle of a task: nothing is reported done that
was not recorded, the task retries, and the retry finds AWS already right."""

import pytest
from django.db import OperationalError

from accounts_app.models import AccessRequest, OperationRole, SyncStatus
from accounts_app.services import access_requests
from provisioning import aws, sync, tasks
from provisioning.sync import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(aws_env, carol, bob, deploy_role):
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="x",
        duration_hours=8,
        actor=carol.user,
    )
    return access_requests.access_request_approve(access_request=req, approver=bob.user)


def test_a_database_failure_after_aws_leaves_nothing_reported_done(
    approved, monkeypatch, iam
):
    sync.account_baseline_sync(account_id=approved.role.account_id)
    sync.iam_user_sync(iam_user_id=approved.requester_id)

    def unavailable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(roles, "_record_success", unavailable)
    with pytest.raises(OperationalError):
        sync.role_sync(role_id=approved.role_id)
    role = OperationRole.objects.get(pk=approved.role_id)
    assert role.sync_status == SyncStatus.PENDING
    assert AccessRequest.objects.get(pk=approved.pk).provisioned_at is None
    assert iam.get_role(RoleName=role.role_name)  # AWS got the write

    monkeypatch.undo()
    with aws.observe_calls() as calls:
        tasks.sync_role.apply(args=[approved.role_id])
    assert [c for c in calls if aws.is_write(c)] == []
    assert OperationRole.objects.get(pk=role.pk).sync_status == SyncStatus.IN_SYNC
    assert AccessRequest.objects.get(pk=approved.pk).provisioned_at is not None


def test_the_task_retries_when_the_database_is_unavailable(approved, monkeypatch):
    failures = iter([OperationalError("could not connect to server")])
    real = sync.role_sync

    def flaky(**kwargs):
        error = next(failures, None)
        if error:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(sync, "role_sync", flaky)
    result = tasks.sync_role.apply(args=[approved.role_id])
    assert result.successful()
    assert OperationRole.objects.get(pk=approved.role_id).sync_status == (
        SyncStatus.IN_SYNC
    )

"""AWS failures carrying real error codes: what is retried, what is permanent,
what the admin sees, and that nothing is created twice."""

import pytest

from accounts_app import sync_requests
from accounts_app.models import OperationRole, SyncStatus
from provisioning import sync, tasks
from provisioning.aws import PermanentError, RetryLater
from tests.faults import injected

pytestmark = pytest.mark.django_db


def role_of(grant):
    return OperationRole.objects.get(pk=grant.role_id)


def test_throttling_is_retried_by_botocore_and_the_role_is_created_once(approved, iam):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "Throttling", "Rate exceeded", times=2)
        sync.role_sync(role_id=approved.role_id)
    assert faults.sent.count("CreateRole") == 3
    assert role_of(approved).sync_status == SyncStatus.IN_SYNC
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]] == [
        "payments-deploy"
    ]


def test_a_5xx_is_retried_like_throttling(approved):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "ServiceFailure", "oops", status=500, times=1)
        sync.role_sync(role_id=approved.role_id)
    assert role_of(approved).sync_status == SyncStatus.IN_SYNC


def test_throttling_beyond_the_attempts_is_retry_later_and_shown_as_pending(approved):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "Throttling", "Rate exceeded", times=3)
        with pytest.raises(RetryLater):
            sync.role_sync(role_id=approved.role_id)
    role = role_of(approved)
    assert role.sync_status == SyncStatus.PENDING
    assert (
        role.last_error == "Retrying: iam:CreateRole failed: Throttling: Rate exceeded"
    )
    assert not role.error_is_permanent


def test_the_task_retries_after_retry_later_and_then_succeeds(approved, settings):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "Throttling", "Rate exceeded", times=4)
        tasks.sync_role.apply(args=[approved.role_id])
    role = role_of(approved)
    assert role.sync_status == SyncStatus.IN_SYNC
    assert role.last_error == ""
    assert faults.sent.count("CreateRole") == 5


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "iam:CreateRole failed: AccessDenied: not allowed"),
        ("LimitExceeded", "iam:CreateRole failed: LimitExceeded: not allowed"),
        ("ValidationError", "iam:CreateRole failed: ValidationError: not allowed"),
        (
            "InvalidClientTokenId",
            "iam:CreateRole failed: InvalidClientTokenId: opsgate's AWS credentials "
            "are invalid or expired. Renew them and retry.",
        ),
    ],
)
def test_permanent_errors_are_recorded_once_and_not_retried(approved, code, expected):
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", code, "not allowed", times=1)
        tasks.sync_role.apply(args=[approved.role_id])
    assert faults.sent.count("CreateRole") == 1
    role = role_of(approved)
    assert role.sync_status == SyncStatus.ERROR
    assert role.error_is_permanent
    assert role.last_error == expected
    assert "testing" not in role.last_error  # no credentials in messages


def test_the_sweep_leaves_permanent_errors_alone_until_an_admin_retries(
    approved, alice, settings
):
    settings.OPSGATE = {**settings.OPSGATE, "SWEEP_GRACE_SECONDS": 0}
    with injected(approved.role.account) as faults:
        faults.fail("CreateRole", "AccessDenied", "not allowed")
        tasks.sync_role.apply(args=[approved.role_id])
    role = role_of(approved)
    assert role.pk not in _swept()
    sync_requests.sync_retry(obj=role, actor=alice.user)
    assert role_of(approved).sync_status == SyncStatus.PENDING
    assert role.pk in _swept()


def _swept():
    from unittest import mock

    with mock.patch.object(tasks, "_publish", return_value=True) as publish:
        tasks.sweep()
    return [
        call.args[1]
        for call in publish.call_args_list
        if call.args[0] is tasks.sync_role
    ]


def test_invalid_principal_right_after_create_user_is_eventual_consistency(approved):
    with injected(approved.role.account) as faults:
        faults.fail(
            "CreateRole", "MalformedPolicyDocument", "Invalid principal in policy"
        )
        with pytest.raises(RetryLater, match="not yet propagated the new user"):
            sync.role_sync(role_id=approved.role_id)
    assert "carol" in role_of(approved).last_error
    sync.role_sync(role_id=approved.role_id)
    assert role_of(approved).sync_status == SyncStatus.IN_SYNC


def test_invalid_principal_long_after_create_user_is_permanent(approved, settings):
    settings.OPSGATE = {**settings.OPSGATE, "PRINCIPAL_PROPAGATION_SECONDS": 0}
    with injected(approved.role.account) as faults:
        faults.fail(
            "CreateRole", "MalformedPolicyDocument", "Invalid principal in policy"
        )
        with pytest.raises(PermanentError, match="users: carol"):
            sync.role_sync(role_id=approved.role_id)
    assert role_of(approved).sync_status == SyncStatus.ERROR


def test_a_role_name_taken_by_something_not_ours_is_a_clear_permanent_error(
    approved, iam
):
    import json

    iam.create_role(
        RoleName="payments-deploy",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    with pytest.raises(PermanentError, match="not managed by opsgate"):
        sync.role_sync(role_id=approved.role_id)
    assert iam.get_role(RoleName="payments-deploy")["Role"]["Path"] == "/"

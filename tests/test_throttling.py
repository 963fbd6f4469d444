"""When AWS throttles, opsgate backs off instead of piling up work (issue 26):
at most one task per object is queued or waiting to retry, an account that
throttles waits as a whole while the others go on, and the dashboard says so."""

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts_app import sync_requests
from accounts_app.models import AwsAccount, IamUser, OperationRole
from accounts_app.services import people
from provisioning import sync, tasks, throttle
from tests.faults import injected

pytestmark = pytest.mark.django_db

WORKLOAD = "111111111111"


@pytest.fixture
def published():
    """What would reach the broker: (task name, pk) in order."""
    sent = []

    def publish(task, pk, **options):
        sent.append((task.name.rsplit(".", 1)[-1], pk))
        return True

    # The fixtures' changes never commit here, so their requests' leases
    # (taken by request_sync in the transaction) were never published nor
    # given back by a task: start as if those tasks had run.
    for model in tasks.TASKS:
        model.objects.update(sync_lease_until=None)
    with mock.patch.object(tasks, "_publish", side_effect=publish):
        yield sent


def lease(obj):
    return type(obj).objects.get(pk=obj.pk).sync_lease_until


def test_a_second_request_for_an_object_with_a_queued_task_publishes_nothing(
    account, carol, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sync_requests.request_sync(carol)
    with django_capture_on_commit_callbacks(execute=True):
        sync_requests.desired_changed(carol)
    assert published == [("sync_iam_user", carol.pk)]
    assert lease(carol) > timezone.now()


def test_the_sweep_publishes_no_second_task_while_one_is_queued(
    account, carol, published, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sync_requests.desired_changed(carol)
    tasks.sweep()
    tasks.sweep()
    assert published.count(("sync_iam_user", carol.pk)) == 1
    # The message was lost: once the lease runs out, the sweep sends another.
    IamUser.objects.filter(pk=carol.pk).update(
        sync_lease_until=timezone.now() - timedelta(seconds=1)
    )
    tasks.sweep()
    assert published.count(("sync_iam_user", carol.pk)) == 2


def test_two_publishers_at_once_send_one_task(account, carol, published):
    assert tasks.sync_publish(IamUser, carol.pk)
    assert not tasks.sync_publish(IamUser, carol.pk)
    assert published == [("sync_iam_user", carol.pk)]


def test_a_broker_that_is_down_gives_the_lease_back_for_the_sweep(
    account, carol, django_capture_on_commit_callbacks
):
    IamUser.objects.filter(pk=carol.pk).update(sync_lease_until=None)  # fixture's
    with mock.patch.object(tasks, "_publish", return_value=False):
        assert not tasks.sync_publish(IamUser, carol.pk)
    assert lease(carol) is None
    # Likewise when the change took the lease in its own transaction.
    with (
        mock.patch.object(tasks, "_publish", return_value=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sync_requests.request_sync(carol)
        assert lease(carol) is not None
    assert lease(carol) is None


def test_a_throttled_retry_keeps_its_lease_and_backs_off_the_whole_account(
    approved, published, settings
):
    role = approved.role
    with injected(role.account) as faults:
        faults.fail("CreateRole", "Throttling", "Rate exceeded", times=3)
        with mock.patch.object(tasks.sync_role, "retry", side_effect=RuntimeError):
            with pytest.raises(RuntimeError):
                tasks._run(
                    mock.Mock(
                        request=mock.Mock(retries=0, is_eager=False),
                        retry=tasks.sync_role.retry,
                    ),
                    OperationRole,
                    sync.role_sync,
                    role.pk,
                )
    wait, backing_off = throttle.account_state(role.account_id)
    assert backing_off
    assert 0 < wait <= throttle.BASE_SECONDS
    assert lease(role) > timezone.now() + timedelta(seconds=wait)
    tasks.sweep()
    assert ("sync_role", role.pk) not in published


def test_a_task_of_a_throttled_account_waits_without_calling_aws(approved, published):
    role = approved.role
    before = OperationRole.objects.get(pk=role.pk).applied_version
    throttle.note(role.account_id)
    task = mock.Mock(request=mock.Mock(retries=0, is_eager=False))
    with injected(role.account) as faults:
        tasks._run(task, OperationRole, sync.role_sync, role.pk)
    assert faults.sent == []
    (call,) = task.apply_async.call_args_list
    assert call.kwargs["args"] == [role.pk]
    assert 0 < call.kwargs["countdown"] <= throttle.BASE_SECONDS + 1
    assert OperationRole.objects.get(pk=role.pk).applied_version == before


def test_another_account_goes_on_at_full_speed_while_one_is_throttled(
    approved, alice, published
):
    # Two accounts' objects are behind; the first account is throttled.
    other = AwsAccount.objects.create(account_id=WORKLOAD, name="staging")
    dave = people.person_add(actor=alice.user, account=other, iam_user_name="dave2")
    for _ in range(6):
        throttle.note(approved.role.account_id)
    OperationRole.objects.filter(pk=approved.role_id).update(sync_lease_until=None)
    IamUser.objects.filter(pk=dave.pk).update(sync_lease_until=None)
    published.clear()
    tasks.sweep()
    assert ("sync_iam_user", dave.pk) in published
    assert ("sync_role", approved.role_id) not in published


def test_a_success_resets_the_accounts_backoff(approved):
    account_pk = approved.role.account_id
    first = [throttle.note(account_pk) for _ in range(4)][-1]
    assert first > throttle.BASE_SECONDS  # doubled
    throttle.succeeded(account_pk)
    assert throttle.note(account_pk) <= max(first, throttle.BASE_SECONDS)


def test_a_change_made_while_the_task_ran_is_published_again_at_its_end(
    approved, published
):
    role = approved.role
    real = sync.role_sync

    def sync_then_change(**kwargs):
        real(**kwargs)
        OperationRole.objects.get(pk=role.pk).bump()

    task = mock.Mock(request=mock.Mock(retries=0, is_eager=False))
    tasks._run(task, OperationRole, sync_then_change, role.pk)
    assert published == [("sync_role", role.pk)]


def test_the_dashboard_names_a_throttled_account_and_what_waits(login, alice, approved):
    for _ in range(6):  # throttled again and again: a minute or so
        throttle.note(approved.role.account_id)
    account = approved.role.account
    waiting = (
        OperationRole.behind().filter(account=account).count()
        + IamUser.behind().filter(account=account).count()
        + AwsAccount.behind().filter(pk=account.pk).count()
    )
    assert waiting >= 1
    page = login(alice).get(reverse("dashboard")).content.decode()
    assert "Throttled by AWS" in page
    assert "throttled by AWS</span> retrying at" in page
    row = page[page.index('data-throttled="') :]
    assert f"<td>{waiting} object" in row[: row.index("</tr>")]

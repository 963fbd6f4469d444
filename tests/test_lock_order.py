"""The web and the worker take the role lock before the request lock (issue 21
item 7): a decision that races a role sync waits for it instead of
deadlocking with it (PostgreSQL would kill one of them after a second)."""

import threading
import time

import pytest
from django.db import connection, transaction

from accounts_app.models import AccessRequest, OperationRole, RequestStatus
from accounts_app.services import access_requests
from tests.helpers import request

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_approval_racing_a_role_sync_waits_instead_of_deadlocking(
    carol, bob, deploy_role
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    pending = request(carol, deploy_role)
    errors: list[BaseException] = []
    role_locked, approving = threading.Event(), threading.Event()

    def worker_like() -> None:
        """What role_sync does: the role's lock, then a write to a request of
        that role (ending a grant whose approver left)."""
        try:
            with transaction.atomic():
                OperationRole.objects.select_for_update().get(pk=deploy_role.pk)
                role_locked.set()
                approving.wait(5)
                time.sleep(0.5)  # the approval is under way now
                AccessRequest.objects.filter(pk=pending.pk).update(reason="touched")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def web_like() -> None:
        try:
            role_locked.wait(5)
            approving.set()
            access_requests.access_request_approve(
                access_request=pending, approver=bob.user
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker_like), threading.Thread(target=web_like)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    req = AccessRequest.objects.get(pk=pending.pk)
    assert req.status == RequestStatus.APPROVED
    assert req.reason == "touched"

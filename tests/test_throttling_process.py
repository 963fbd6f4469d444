"""AWS throttles one account hard while people are imported and approvals
arrive (issue 26), through real worker processes with beat running the sweep
every two seconds: the queue stays bounded, the AWS calls stay within a small
factor of the calls that got through, nothing is lost, the other account
converges while the first is still throttled, and everything converges soon
after the throttling stops.

At the suite's size (40 people, 12 approvals, 20 s of throttling) it takes
about a minute; `bench/throttling.sh` runs it at 500 people, 200 approvals and
two minutes, and prints the same figures."""

import os
import time

import pytest
import redis
from django.db.models import F

from accounts_app.models import AccessRequest, AwsAccount, IamUser, OperationRole
from accounts_app.services import access_requests, accounts, people, projects, roles
from provisioning import boundaries, sync
from tests.conftest import ACCOUNT_ID
from tests.test_accounts import STAGING_ID, provisioner
from tests.workers import ROOT, Worker, reset_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PEOPLE = int(os.environ.get("OPSGATE_THROTTLE_PEOPLE", "40"))
APPROVALS = int(os.environ.get("OPSGATE_THROTTLE_APPROVALS", "12"))
THROTTLE_SECONDS = float(os.environ.get("OPSGATE_THROTTLE_SECONDS", "20"))
HOLDERS = 6  # people who exist before the throttling, holding the grants


def counters_url() -> str:
    from django.conf import settings

    base = settings.CELERY_BROKER_URL.rsplit("/", 1)[0]
    return f"{base}/{int(settings.CELERY_BROKER_URL.rsplit('/', 1)[1]) or 1}"


def behind() -> dict[str, int]:
    return {
        model.__name__: model.behind().filter(error_is_permanent=False).count()
        for model in (AwsAccount, IamUser, OperationRole)
    }


def test_a_throttled_account_backs_off_while_another_goes_on(aws_env, settings):
    from django.conf import settings as conf

    if not conf.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker (scripts/test.sh)")
    reset_broker()  # before anything is published: no message may be lost
    people_account = AwsAccount.objects.create(
        account_id=ACCOUNT_ID, name="people", is_default=True, holds_roles=False
    )
    staging = accounts.account_add(
        actor=None,
        account_id=STAGING_ID,
        name="staging",
        holds_people=False,
        identity_account_id=ACCOUNT_ID,
        assume_role_arn=provisioner(STAGING_ID),
        external_id="opsgate-staging",
    )
    boundaries.apply(account=staging)
    # Before the storm: the holders and the baselines exist.
    sync.account_baseline_sync(account_id=people_account.pk)
    sync.account_baseline_sync(account_id=staging.pk)
    holders = [
        people.person_add(actor=None, account=people_account, iam_user_name=f"h{i}")
        for i in range(HOLDERS)
    ]
    for holder in holders:
        sync.iam_user_sync(iam_user_id=holder.pk)
    approver = people.person_add(
        actor=None, account=people_account, iam_user_name="approver"
    )
    project = projects.project_create(
        actor=None, name="payments", account=staging, approvers=[approver.user]
    )
    os_users = [f"u{i}" for i in range(max(1, APPROVALS // HOLDERS + 1))]
    staging_roles = [
        roles.role_create(actor=None, project=project, os_user=u) for u in os_users
    ]

    counts = redis.Redis.from_url(counters_url())
    counts.delete("calls:throttled-account", "calls:other", "throttled")
    until = time.time() + THROTTLE_SECONDS
    worker = Worker(
        "throttled",
        beat=True,
        env={
            "PYTHONPATH": str(ROOT / "tests" / "throttleaws"),
            "OPSGATE_TEST_THROTTLE_UNTIL": str(until),
            "OPSGATE_TEST_THROTTLE_KEY": os.environ["AWS_ACCESS_KEY_ID"],
            "OPSGATE_TEST_COUNT_URL": counters_url(),
            "OPSGATE_SWEEP_SECONDS": "2",
        },
    ).wait_ready()
    broker = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    longest = 0

    def queue_length() -> int:
        return broker.llen("celery") + broker.hlen("unacked")

    try:
        for i in range(PEOPLE):
            people.person_add(
                actor=None, account=people_account, iam_user_name=f"new{i}"
            )
        grants = []
        for i in range(APPROVALS):
            holder = holders[i % HOLDERS]
            role = staging_roles[i // HOLDERS]
            req = access_requests.access_request_create(
                requester=holder,
                role=role,
                reason="release",
                duration_hours=8,
                actor=holder.user,
            )
            grants.append(
                access_requests.access_request_approve(
                    access_request=req, approver=approver.user
                )
            )

        # The other account converges while the first is still throttled.
        def staging_done() -> bool:
            nonlocal longest
            longest = max(longest, queue_length())
            return (
                not OperationRole.objects.filter(account=staging)
                .filter(applied_version__lt=F("desired_version"))
                .exists()
            )

        assert wait_for(staging_done, timeout=THROTTLE_SECONDS * 3)
        staging_at = time.time()

        def all_done() -> bool:
            nonlocal longest
            longest = max(longest, queue_length())
            return sum(behind().values()) == 0

        assert wait_for(all_done, timeout=THROTTLE_SECONDS + 180, interval=0.5), (
            behind(),
            worker.log()[-3000:],
        )
        done_at = time.time()
    finally:
        worker.stop()

    throttled_calls = int(counts.get("calls:throttled-account") or 0)
    other_calls = int(counts.get("calls:other") or 0)
    refused = int(counts.get("throttled") or 0)
    through = throttled_calls + other_calls - refused
    objects = PEOPLE + len(staging_roles) + 2
    print(
        f"\nthrottling: {PEOPLE} people, {APPROVALS} approvals, "
        f"{THROTTLE_SECONDS:.0f} s of throttling"
        f"\n  staging converged {staging_at - until:+.1f} s from the end of it"
        f"\n  everything converged {done_at - until:+.1f} s after it"
        f"\n  longest queue (queued + unacked): {longest} for {objects} objects"
        f"\n  IAM calls: {throttled_calls + other_calls} made, {refused} throttled, "
        f"{through} through ({(throttled_calls + other_calls) / through:.2f}x)"
    )
    # Bounds: one task per object (plus beat's own tasks) at any time, calls
    # within twice of what got through, and convergence soon after.
    assert staging_at < until, "staging waited for the throttled account"
    assert longest <= objects + 10
    assert throttled_calls + other_calls <= 2 * through
    assert all(
        AccessRequest.objects.get(pk=g.pk).provisioned_at is not None for g in grants
    )
    assert IamUser.objects.filter(arn="").count() == 0

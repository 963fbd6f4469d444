"""The role's sync on the approval path (issue 24): what it no longer reads
or writes, and the seams around it (a failing AWS call, quorum, a legacy
grant, an ending in the same sync, a stale baseline, throttling); and one
readiness check for the grants one sync made active (issue 25)."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    Approval,
    AwsAccount,
    OperationRole,
    ReadinessState,
    RequestStatus,
)
from accounts_app.services import access_requests, rules
from provisioning import aws, policies, readiness, sync, tasks, throttle
from provisioning.aws import PermanentError
from provisioning.sync import roles
from tests import faults
from tests.conftest import _person
from tests.helpers import grant
from tests.readiness_sim import register_mfa
from tests.test_ending import denied, trusted, user_arn

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """(task name, argument) of what the worker was asked for (nothing runs)."""
    sent = []

    def publish(task, arg, **options):
        sent.append((task.name.rsplit(".", 1)[-1], arg))
        return True

    monkeypatch.setattr(tasks, "_publish", publish)
    return sent


def synced(*people):
    for person in people:
        sync.iam_user_sync(iam_user_id=person.pk)


def _grants(role):
    return (
        AccessRequest.active_grants()
        .filter(role=role)
        .select_related("requester__account")
    )


# --- What a sync reads ---------------------------------------------------------


def test_a_sync_with_nothing_new_reads_no_approvals_and_takes_no_deny_savepoint(
    approved, django_assert_max_num_queries
):
    sync.role_sync(role_id=approved.role_id)
    OperationRole.objects.filter(pk=approved.role_id).update(
        desired_version=F("desired_version") + 1
    )
    # The role locked, its grants, its endings; the trust step's savepoint
    # (two statements); the version recorded. Inside the test's transaction
    # the sync's own is a savepoint too: two more.
    with django_assert_max_num_queries(8) as captured:
        sync.role_sync(role_id=approved.role_id)
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "accounts_app_approval" not in sql
    assert "auth_user" not in sql


def test_the_recheck_reads_the_approvals_of_every_grant_in_one_query(
    aws_env, account, alice, bob, dave, erin, payments, deploy_role
):
    payments.approvers.add(dave.user, erin.user)
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    people = [_person(account, name) for name in ("fay", "gus", "hal")]
    requests = []
    for person, second in zip(people, (dave, dave, erin), strict=True):
        req = access_requests.access_request_create(
            requester=person,
            role=deploy_role,
            reason="r",
            duration_hours=8,
            actor=person.user,
        )
        for approver in (bob, second):
            access_requests.access_request_approve(
                access_request=req, approver=approver.user
            )
        requests.append(req)
    role = OperationRole.objects.select_related("project").get(pk=deploy_role.pk)
    held = _grants(role)
    list(held)
    with CaptureQueriesContext(connection) as captured:
        kept = roles._still_allowed(role, held)
    assert len(captured) == 1  # the approvals, each marked by its approver's right
    assert sorted(g.pk for g in kept) == sorted(r.pk for r in requests)

    # dave no longer approves: the two grants he was the second approval of
    # are revoked, erin's stands.
    payments.approvers.remove(dave.user)
    kept = roles._still_allowed(role, _grants(role))
    assert [g.pk for g in kept] == [requests[2].pk]
    for req in requests[:2]:
        req.refresh_from_db()
        assert req.status == RequestStatus.REVOKED
        assert "only 1 of the 2 approvals" in req.end_comment


def test_a_grant_without_approval_rows_is_rechecked_against_its_decider(
    aws_env, carol, bob, deploy_role, payments
):
    """A grant approved before quorums existed has only its decider."""
    req = grant(carol, deploy_role, bob)
    Approval.objects.filter(access_request=req).delete()
    role = OperationRole.objects.select_related("project").get(pk=deploy_role.pk)
    assert [g.pk for g in roles._still_allowed(role, _grants(role))] == [req.pk]

    payments.approvers.remove(bob.user)
    assert roles._still_allowed(role, _grants(role)) == []
    req.refresh_from_db()
    assert req.status == RequestStatus.REVOKED
    assert req.end_comment == "Not provisioned: bob may no longer approve payments."


# --- Seams ------------------------------------------------------------------------


def test_an_approval_and_a_revoke_in_one_sync_deny_the_one_and_trust_the_other(
    aws_env, iam, carol, dave, erin, bob, deploy_role
):
    synced(carol, dave, erin)
    g_carol = grant(carol, deploy_role, bob)
    g_dave = grant(dave, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    access_requests.access_request_revoke(access_request=g_dave, actor=bob.user)
    g_erin = grant(erin, deploy_role, bob)

    sync.role_sync(role_id=deploy_role.pk)

    assert trusted(iam) == [user_arn("carol"), user_arn("erin")]
    assert list(denied(iam)) == ["dave"]
    g_dave.refresh_from_db()
    assert g_dave.deny_written_at and g_dave.trust_removed_at
    assert g_dave.deny_written_at <= g_dave.trust_removed_at  # deny first
    assert g_dave.deny_cutoff > g_dave.trust_removed_at  # covers propagation
    g_erin.refresh_from_db()
    assert g_erin.provisioned_at is not None
    g_carol.refresh_from_db()
    assert g_carol.provisioned_at < g_erin.provisioned_at  # not written again


def test_a_failing_trust_write_activates_nothing_and_asks_no_check(
    aws_env, iam, account, carol, dave, bob, deploy_role, readiness_on, published
):
    synced(carol, dave)
    grant(carol, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    g_dave = grant(dave, deploy_role, bob)
    published.clear()
    with faults.injected(account) as plan:
        plan.fail("UpdateAssumeRolePolicy", "AccessDenied", status=403)
        with pytest.raises(PermanentError):
            sync.role_sync(role_id=deploy_role.pk)
    g_dave.refresh_from_db()
    assert g_dave.provisioned_at is None
    assert g_dave.readiness_state == ReadinessState.UNKNOWN
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert role.applied_version < role.desired_version
    assert "AccessDenied" in role.last_error and role.error_is_permanent
    assert user_arn("dave") not in trusted(iam)
    assert [p for p in published if p[0] == "check_readiness"] == []


def test_a_stale_baseline_is_converged_before_the_role_in_the_same_sync(approved, iam):
    AwsAccount.objects.filter(pk=approved.role.account_id).update(
        desired_version=F("desired_version") + 1
    )
    sync.role_sync(role_id=approved.role_id)
    account = AwsAccount.objects.get(pk=approved.role.account_id)
    assert account.applied_version == account.desired_version
    approved.refresh_from_db()
    assert approved.provisioned_at is not None
    assert trusted(iam) == [user_arn("carol")]


def test_a_success_after_throttling_resets_the_accounts_backoff(approved):
    account_pk = approved.role.account_id
    throttle.note(account_pk)
    assert throttle.account_state(account_pk)[1]
    task = mock.Mock(request=mock.Mock(retries=0, is_eager=True))
    tasks._run(task, OperationRole, sync.role_sync, approved.role_id)
    approved.refresh_from_db()
    assert approved.provisioned_at is not None
    assert throttle.account_state(account_pk)[1] is False


# --- One readiness check for the grants one sync made active --------------------


@pytest.fixture
def two_new(aws_env, carol, dave, bob, deploy_role, readiness_on):
    sync.account_baseline_sync(account_id=deploy_role.account_id)
    synced(carol, dave)
    return grant(carol, deploy_role, bob), grant(dave, deploy_role, bob)


def test_grants_activated_in_one_sync_get_one_readiness_check(
    two_new, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sync.role_sync(role_id=two_new[0].role_id)
    checks = [arg for name, arg in published if name == "check_readiness"]
    assert len(checks) == 1
    assert sorted(checks[0]) == sorted(g.pk for g in two_new)
    states = AccessRequest.objects.filter(pk__in=[g.pk for g in two_new])
    assert {g.readiness_state for g in states} == {ReadinessState.CHECKING}


def test_one_check_reads_the_role_once_and_judges_each_persons_trust(two_new, iam):
    sync.role_sync(role_id=two_new[0].role_id)
    # dave is no longer in the trust (as if written behind opsgate's back).
    iam.update_assume_role_policy(
        RoleName=two_new[0].role.role_name,
        PolicyDocument=json.dumps(policies.trust_policy([user_arn("carol")])),
    )
    register_mfa("carol")
    register_mfa("dave")
    with aws.observe_calls() as calls:
        wait, waiting = readiness.grants_readiness_run(
            grant_ids=[g.pk for g in two_new], retry=False
        )
    assert (wait, waiting) == (0.0, [])
    assert calls.count("iam:GetRole") == 1
    assert calls.count("iam:ListAttachedRolePolicies") == 1
    assert calls.count("ec2:DescribeInstances") == 1
    carol_grant, dave_grant = (AccessRequest.objects.get(pk=g.pk) for g in two_new)
    assert carol_grant.readiness_state == ReadinessState.READY
    assert dave_grant.readiness_state == ReadinessState.NOT_READY
    (bad,) = [c for c in dave_grant.readiness_checks if not c["ok"]]
    assert bad["key"] == "trust" and "does not list dave" in bad["message"]


def test_only_the_grants_waiting_for_propagation_are_checked_again(two_new, iam):
    g_carol, g_dave = two_new
    sync.role_sync(role_id=g_carol.role_id)
    register_mfa("carol")  # but not in the group yet, as if IAM lagged
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="carol")
    # dave has no MFA device: reported at once, nothing to wait for.

    wait, waiting = readiness.grants_readiness_run(
        grant_ids=[g_carol.pk, g_dave.pk], attempt=0
    )
    assert (wait, waiting) == (5.0, [g_carol.pk])
    assert AccessRequest.objects.get(pk=g_dave.pk).readiness_state == "not_ready"
    assert AccessRequest.objects.get(pk=g_carol.pk).readiness_checks == []

    # The task comes back for carol's grant only.
    with mock.patch.object(
        tasks.check_readiness, "retry", side_effect=RuntimeError
    ) as retry:
        with pytest.raises(RuntimeError):
            tasks.check_readiness.run([g_carol.pk, g_dave.pk])
    assert retry.call_args.kwargs["args"] == [[g_carol.pk]]
    assert retry.call_args.kwargs["countdown"] == 5.0


def test_an_error_in_one_grants_check_leaves_the_others_checked(two_new, monkeypatch):
    """One task checks all the grants a sync made active: an error of
    opsgate's own in one check (not AWS's) reports that grant as not ready
    with what to do, and the others are still checked and recorded."""
    from provisioning.readiness import runner

    g_carol, g_dave = two_new
    sync.role_sync(role_id=g_carol.role_id)
    real = runner.check_grant

    def check(grant, **kwargs):
        if grant.pk == g_carol.pk:
            raise RuntimeError("a bug")
        return real(grant, **kwargs)

    monkeypatch.setattr(runner, "check_grant", check)
    assert readiness.grants_readiness_run(
        grant_ids=[g_carol.pk, g_dave.pk], retry=False
    ) == (0.0, [])
    carol_grant = AccessRequest.objects.get(pk=g_carol.pk)
    assert carol_grant.readiness_state == ReadinessState.NOT_READY
    (failed,) = carol_grant.readiness_checks
    assert "Could not finish the check" in failed["message"]
    assert "Check again" in failed["fix"]
    dave_grant = AccessRequest.objects.get(pk=g_dave.pk)
    assert dave_grant.readiness_state == ReadinessState.NOT_READY  # no MFA device
    assert {c["key"] for c in dave_grant.readiness_checks} != {"opsgate"}


def test_a_single_grant_id_from_an_older_release_is_still_checked(two_new):
    g_carol, _ = two_new
    sync.role_sync(role_id=g_carol.role_id)
    tasks.check_readiness.apply(args=[g_carol.pk])
    assert AccessRequest.objects.get(pk=g_carol.pk).readiness_state == "not_ready"


def test_a_grant_expiring_while_its_role_syncs_is_still_ended_with_a_deny(
    aws_env, iam, carol, dave, bob, deploy_role, monkeypatch
):
    """The sync reads the active grants, makes users in AWS (seconds), then
    converges: a grant whose expiry falls in between was taken for its own
    replacement (no deny, no session ended, ever), so carol's sessions
    outlived the grant once the expiry rewrote the trust."""
    from types import SimpleNamespace

    from accounts_app.services import lifecycle
    from provisioning.sync import ending

    synced(carol, dave)
    g = grant(carol, deploy_role, bob)
    grant(dave, deploy_role, bob)  # keeps the role
    sync.role_sync(role_id=deploy_role.pk)
    assert trusted(iam) == [user_arn("carol"), user_arn("dave")]
    expires = timezone.now() + timedelta(seconds=30)
    AccessRequest.objects.filter(pk=g.pk).update(expires_at=expires)
    later = expires + timedelta(seconds=1)
    # The grants read before the expiry, the role converged after it.
    with monkeypatch.context() as m:
        m.setattr(ending, "timezone", SimpleNamespace(now=lambda: later))
        sync.role_sync(role_id=deploy_role.pk)
    lifecycle.access_requests_expire(now=later)
    sync.role_sync(role_id=deploy_role.pk)

    g.refresh_from_db()
    assert g.status == RequestStatus.EXPIRED
    assert trusted(iam) == [user_arn("dave")]
    assert "carol" in denied(iam)
    assert g.deny_cutoff and g.deny_written_at <= g.trust_removed_at

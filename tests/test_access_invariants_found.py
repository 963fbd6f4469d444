"""Counterexamples the access-invariants state machine found on main (issue
20), kept as small deterministic tests. Each replays a short sequence of the
machine's own steps (tests/test_access_invariants.py) on the same world (an
identity account, staging and prod in moto; admin alice, approver bob,
requesters carol and dave) and fails with the violated invariant's message.

Each names the item of issue 20 that broke it; all of them are fixed, and
each failed before its fix (they were strict xfails until the fixes landed).
"""

import contextlib
from datetime import timedelta

import pytest

from tests.invariants_model import Fault
from tests.test_access_invariants import (  # noqa: F401 - the fixtures
    AccessInvariants,
    harness,
    invariants_moto,
)

pytestmark = pytest.mark.django_db

STAGING, PROD = "111111111111", "222222222222"


@contextlib.contextmanager
def machine(harness):  # noqa: F811
    m = AccessInvariants()
    m.world()
    try:
        yield m
    finally:
        m.teardown()


def regression(item: int, why: str):
    """The issue-20 item a test guards and what it broke (documentation only)."""
    return lambda test: test


@regression(
    7,
    "re-adding a person before the old IAM user is deleted adopts it; the old "
    "record's late deletion then deletes the new user while the database says "
    "in sync",
)
def test_a_person_added_again_while_the_old_user_awaits_deletion_keeps_an_iam_user(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        m.offboard(
            name="bob",
            again=True,
            fault=Fault(kind="iam", code="Throttling", op="DeleteUser"),
        )


def grant(m, name, key="staging", hours=8):
    m.request(name=name, key=key, hours=hours, starts_in=None, decide="bob", fault=None)


@regression(
    1,
    "an SSM error while ending a grant rolls back the role sync: the deny of "
    "the revoked person's sessions is never written",
)
def test_an_ssm_failure_while_revoking_still_denies_the_old_sessions(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        grant(m, "carol")
        grant(m, "dave")
        m.revoke(
            index=0,
            by="bob",
            fault=Fault(
                kind="ssm", code="AccessDeniedException", op="TerminateSession"
            ),
        )


@regression(
    2,
    "revoking the last holder deletes the revoked-sessions deny first; when "
    "DeleteRole then fails, earlier revocations' sessions are no longer denied",
)
def test_a_failed_role_deletion_does_not_lift_earlier_revocations(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        grant(m, "carol")
        grant(m, "dave")
        m.revoke(index=0, by="bob", fault=None)  # carol: denied from now on
        m.revoke(
            index=0,
            by="bob",
            fault=Fault(kind="iam", code="AccessDenied", op="DeleteRole"),
        )


@regression(
    4,
    "granting a revoked person the role again within the session duration "
    "lifts their deny: sessions from before the revoke are valid again",
)
def test_a_regrant_within_the_session_duration_keeps_the_old_sessions_denied(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        grant(m, "carol")
        grant(m, "dave")
        m.revoke(index=0, by="bob", fault=None)
        grant(m, "carol")


@regression(
    6,
    "offboarding deletes the IAM user only after every affected role synced: "
    "an unreachable workload account keeps the person usable",
)
def test_offboarding_disables_the_person_even_when_a_workload_account_is_down(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        grant(m, "carol", key="prod")
        m.offboard(name="carol", again=False, fault=Fault(kind="dead", account=PROD))


@regression(
    9,
    "removing a cross-account principal from a role neither denies their "
    "sessions nor ends their SSM shells",
)
def test_a_removed_cross_account_principal_loses_their_sessions(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        grant(m, "carol")
        oscar = "arn:aws:iam::333333333333:user/ext/oscar"
        m.cross_account_principals(key="staging", arns={oscar}, fault=None)
        m.cross_account_principals(key="staging", arns=set(), fault=None)


@regression(
    10,
    "a short request while holding a scheduled grant is treated as an "
    "extension: 1 hour asked, access from now until the scheduled end",
)
def test_a_short_request_during_a_scheduled_grant_gives_only_its_hours(
    harness,  # noqa: F811
):
    with machine(harness) as m:
        m.request(
            name="carol",
            key="staging",
            hours=24,
            starts_in=timedelta(hours=30),
            decide="bob",
            fault=None,
        )
        grant(m, "carol", hours=1)


@regression(
    11,
    "an access review's revoke does nothing once the grant was extended: the "
    "replacement escapes the review",
)
def test_a_review_revoke_ends_an_extended_grant(harness):  # noqa: F811
    with machine(harness) as m:
        grant(m, "carol")
        m.access_review_decides(index=0, reviewer="bob", revoke=False, fault=None)
        grant(m, "carol", hours=24)  # the extension
        m.access_review_decides(index=0, reviewer="bob", revoke=True, fault=None)


@regression(
    12,
    "the trust-size check ignores scheduled grants: the trust overflows its "
    "quota when they start",
)
def test_scheduled_grants_count_against_the_trust_quota(harness):  # noqa: F811
    with machine(harness) as m:
        grant(m, "alice")
        m.request(
            name="carol",
            key="staging",
            hours=8,
            starts_in=timedelta(hours=2),
            decide="bob",
            fault=None,
        )
        grant(m, "dave")
        m.time_passes(delta=timedelta(minutes=61), fault=None)
        m.time_passes(delta=timedelta(minutes=61), fault=None)


@regression(
    13,
    "an auto-approval rule lets an admin list themself: their request is "
    "granted with nobody else approving",
)
def test_an_admin_cannot_auto_approve_their_own_requests(harness):  # noqa: F811
    with machine(harness) as m:
        m.auto_approval_rule(key="staging", names={"alice"}, max_hours=24, fault=None)
        m.request(
            name="alice",
            key="staging",
            hours=24,
            starts_in=None,
            decide=None,
            fault=None,
        )


@regression(
    14,
    "break-glass compares the person's account with the role's account, not "
    "its identity account: always refused for roles in workload accounts",
)
def test_break_glass_works_for_a_role_in_a_workload_account(harness):  # noqa: F811
    from django.core.exceptions import ValidationError

    from accounts_app.models import AccessRequest
    from accounts_app.services import break_glass

    with machine(harness) as m:
        carol = m.world.person("carol")
        try:
            break_glass.break_glass_activate(
                requester=carol,
                role=m.world.role("staging"),
                reason="incident",
                actor=carol.user,
            )
        except ValidationError as exc:
            raise AssertionError(f"break-glass refused: {exc}") from exc
        assert AccessRequest.objects.filter(break_glass=True).count() == 1

"""The benchmarks at tiny sizes, so the scripts never rot; they also pin the
AWS call budget per operation."""

import pytest

from bench import aws_calls


@pytest.mark.django_db
def test_each_operation_writes_the_minimum_and_reads_little(aws_env, account):
    rows = {row["operation"]: row for row in aws_calls.measure()}
    assert {name: (r["writes"], r["minimum_writes"]) for name, r in rows.items()} == {
        name: (r["minimum_writes"], r["minimum_writes"]) for name, r in rows.items()
    }
    reads = {name: r["reads"] for name, r in rows.items()}
    assert reads == {
        "new person (CreateUser with tags, AddUserToGroup)": 1,
        "grant on an existing role": 2,
        "nothing changed: role": 2,
        "nothing changed: user": 2,
        # GetRolePolicy: the inline deny of revoked sessions is checked while
        # it is in force (one MaxSessionDuration after the revoke).
        "revoke (trust + deny of the person's live sessions)": 3,
        "nothing changed: role with a deny still in force": 3,
        # GetRole, ListRolePolicies, ListAttachedRolePolicies,
        # ListInstanceProfilesForRole: what IAM needs gone before DeleteRole.
        "revoke of the last grant (role deleted)": 4,
    }

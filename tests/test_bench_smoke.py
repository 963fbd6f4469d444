"""The benchmarks at tiny sizes, so the scripts never rot; they also pin the
AWS call budget per operation."""

import os
import signal
import subprocess
import sys

import pytest

from bench import aws_calls
from tests.workers import ROOT, wait_for


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
        # GetRole, GetRolePolicy (the deny, written first), then
        # ListAttachedRolePolicies, ListInstanceProfilesForRole,
        # ListRolePolicies: what IAM needs gone before DeleteRole.
        "revoke of the last grant (role deleted)": 5,
    }


@pytest.mark.django_db(transaction=True)
def test_an_approval_commits_once_and_its_sync_makes_the_bare_calls(aws_env, account):
    """bench/approval_latency.parts at a tiny size: the approve POST commits
    once (the task lease is taken in its transaction, the worker is told after
    it; a separate claim after it was a second commit), and the role's sync
    makes no more calls than the bare figure times."""
    from django.test import Client

    from bench import approval_latency

    approver, pending = approval_latency.seed(approvals=2, roles=1)
    client = Client()
    client.force_login(approver.user)
    parts = approval_latency.parts(approver, pending, client)
    assert parts["post_commits"] == 1
    assert parts["sync_aws_calls"] <= 3  # GetRole, ListAttachedRolePolicies, trust
    # The role's transaction, then the task's lease given back.
    assert parts["sync_commits"] == 2
    # Upper bounds (issue 24): the POST's 13 queries (the session, its user and
    # MFA included) and the e-mail's read after its commit; the sync task's 9
    # before its commit (its state, the role locked with its account, the
    # grants, their approvals with their approvers' rights, the endings in
    # one read; the trust step's savepoint around the grant marked active;
    # the version recorded), the "active" e-mail's read and the lease given
    # back after it.
    assert parts["post_queries"] <= 14
    assert parts["sync_queries"] <= 11


# --- bench/run.py (bench/processes.py) stops what it started when stopped -----

CHILDREN = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django
django.setup()
from bench import processes
processes.install_signal_handlers()
moto, url = processes.start_moto()
gunicorn_like = processes.spawn(["sleep", "600"])
start_worker = processes.start_worker
worker_pid = start_worker("benchsignal", concurrency=1).proc.pid if {worker} else 0
print(moto.pid, gunicorn_like.pid, worker_pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


@pytest.mark.worker
@pytest.mark.parametrize(
    "signum, worker",
    [(signal.SIGTERM, True), (signal.SIGINT, False), (signal.SIGHUP, False)],
)
def test_bench_run_stops_moto_web_and_workers_when_it_is_stopped(signum, worker):
    bench = subprocess.Popen(
        [sys.executable, "-c", CHILDREN.format(root=str(ROOT), worker=worker)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        pids = [int(p) for p in bench.stdout.readline().split()]
        assert len(pids) == 3, "the children did not start"
        moto, web, worker_pid = pids
        children = [moto, web] + ([worker_pid] if worker else [])
        assert all(_running(pid) for pid in children)
        bench.send_signal(signum)
        assert bench.wait(timeout=60) == 128 + signum
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
        bench.stdout.close()
    assert [pid for pid in children if _running(pid)] == []
    if worker:  # the worker's pool went with it
        assert wait_for(lambda: _in_group(worker_pid) == [], timeout=20)

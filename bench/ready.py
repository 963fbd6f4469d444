"""Approval → Ready (issue 25): approve N requests through the service (as
the approve form does), a real Celery worker converges each role and then runs
the readiness check (the person's user, group and MFA device, the role read
back, the project's instances), and the time from the approval to `ready_at`
is taken per grant. Printed with approval → active (`provisioned_at`) for
comparison, and the AWS calls of one check.

    .venv/bin/python bench/ready.py [--grants 50] [--instances 0] [--burst]
        [--db postgres://postgres@127.0.0.1:5432/opsgate_bench]
        [--broker redis://127.0.0.1:6379/12]

It uses bench/run.py's harness (bench/processes.py, bench/sections.py): a
moto server process (provisioning.moto_ext), the database emptied and
migrated, a Celery worker process. `--instances N`
tags N running instances with each project, each holding the role's OS user
(the tag of moto's Run Command simulation, provisioning/moto_ext_run_command.py),
and deploys the two OS-user SSM documents first (the deployment step): the
check runs opsgate-CheckOsUser on them.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(grants: int, instances: int):
    """N people with an MFA device, one project and role each (so every
    approval converges its own role), N pending requests."""
    import boto3

    from accounts_app.models import AwsAccount
    from accounts_app.services import access_requests, people, projects
    from accounts_app.services import roles as role_services
    from provisioning import os_user_deploy, sync
    from provisioning.moto_ext import enable_virtual_mfa
    from provisioning.moto_ext_run_command import USERS_TAG

    account = AwsAccount.objects.get(is_default=True)
    if instances:
        os_user_deploy.apply(regions=account.session_regions)
    approver = people.person_add(actor=None, account=account, iam_user_name="rd-appr")
    sync.account_baseline_sync(account_id=account.pk)
    iam = boto3.client("iam", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    pending = []
    for i in range(grants):
        person = people.person_add(
            actor=None, account=account, iam_user_name=f"rd{i:04d}"
        )
        sync.iam_user_sync(iam_user_id=person.pk)
        enable_virtual_mfa(iam, person.name)
        project = projects.project_create(
            actor=None,
            name=f"ready-{i:04d}",
            account=account,
            approvers=[approver.user],
        )
        role = role_services.role_create(actor=None, project=project, os_user="ops")
        for n in range(instances):
            ec2.run_instances(
                ImageId=image,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": [
                            {"Key": "Project", "Value": project.name},
                            {"Key": "Name", "Value": f"{project.name}-{n}"},
                            {"Key": USERS_TAG, "Value": role.os_user},
                        ],
                    }
                ],
            )
        pending.append(
            access_requests.access_request_create(
                requester=person,
                role=role,
                reason="bench",
                duration_hours=8,
                actor=person.user,
            )
        )
    return approver, pending


def _wait(ids: list[int], deadline: float) -> None:
    from accounts_app.models import AccessRequest

    done = AccessRequest.objects.filter(pk__in=ids, readiness_checked_at__isnull=False)
    while done.count() < len(ids) and time.monotonic() < deadline:
        time.sleep(0.01)


def measure(
    grants: int, instances: int = 0, timeout: float = 120, burst: bool = False
) -> dict:
    """One approval at a time (each waits for its check), or all at once
    (`burst`: the queue's figure)."""
    from accounts_app.models import AccessRequest
    from accounts_app.services import access_requests

    approver, pending = seed(grants, instances)
    deadline = time.monotonic() + timeout
    ids = [r.pk for r in pending]
    for req in pending:
        access_requests.access_request_approve(
            access_request=req, approver=approver.user
        )
        if not burst:
            _wait([req.pk], deadline)
    _wait(ids, deadline)
    rows = list(AccessRequest.objects.filter(pk__in=ids))
    ready = [r for r in rows if r.ready_at]
    to_ready = [(r.ready_at - r.decided_at).total_seconds() for r in ready]
    to_active = [
        (r.provisioned_at - r.decided_at).total_seconds()
        for r in rows
        if r.provisioned_at
    ]
    result = {
        "grants": len(rows),
        "approvals": "all at once" if burst else "one at a time",
        "instances_each": instances,
        "ready": len(ready),
        "not_ready": sum(r.readiness_state == "not_ready" for r in rows),
        "unchecked": sum(r.readiness_checked_at is None for r in rows),
    }
    for name, values in (("active", to_active), ("ready", to_ready)):
        if values:
            result[f"{name}_p50_s"] = round(statistics.median(values), 2)
            result[f"{name}_p95_s"] = round(percentile(values, 0.95), 2)
    failed = {
        c["key"]
        for r in rows
        if r.readiness_state == "not_ready"
        for c in r.readiness_checks
        if not c["ok"]
    }
    result["failed_checks"] = ", ".join(sorted(failed)) or "none"
    return result


def calls_of_one_check() -> str:
    """The AWS calls of one readiness check of an already checked grant."""
    from accounts_app.models import AccessRequest
    from provisioning import aws, readiness

    grant = AccessRequest.objects.filter(ready_at__isnull=False).first()
    if grant is None:
        return "no Ready grant"
    with aws.observe_calls() as calls:
        readiness.check_grant(grant)
    counted: dict[str, int] = {}
    for call in calls:
        counted[call] = counted.get(call, 0) + 1
    return ", ".join(f"{c} ×{n}" if n > 1 else c for c, n in sorted(counted.items()))


def main() -> None:
    from bench import processes, run, sections

    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=50)
    parser.add_argument("--instances", type=int, default=0)
    parser.add_argument(
        "--burst", action="store_true", help="approve all at once (the queue)"
    )
    parser.add_argument(
        "--db", default="postgres://postgres@127.0.0.1:5432/opsgate_bench"
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    processes.install_signal_handlers()
    run.prepare_environment(args.db, args.broker)
    try:
        sections.fresh(os.environ["AWS_ENDPOINT_URL"])
        worker = processes.start_worker(
            "ready", concurrency=2, env={"OPSGATE_READINESS_CHECKS": "true"}
        )
        try:
            figures = measure(args.grants, args.instances, burst=args.burst)
        finally:
            processes.finish(worker)
        print(f"## Approval to Ready: {args.grants} grants, a real worker\n")
        print(sections.table([figures], list(figures)) + "\n")
        print(f"AWS calls of one check: {calls_of_one_check()}\n")
    finally:
        processes.stop_children()


if __name__ == "__main__":
    main()

"""The project's instances in the role's account and session regions: online
in SSM (DescribeInstanceInformation) and holding the OS run-as user
(provisioning.os_users; created there when the project opted in)."""

from collections.abc import Callable
from typing import Any

from accounts_app.models import AccessRequest
from provisioning import aws, os_users, policies
from provisioning.aws import AwsError, aws_action
from provisioning.readiness.checks import (
    NO_OS_USER,
    NOT_MANAGED,
    OFFLINE,
    READY,
    Check,
    conf,
    failed_call,
)

# EC2 states an instance row is read for (terminated ones are gone).
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# DescribeInstanceInformation takes at most 50 instance ids per filter.
INFO_BATCH = 50


def _instances(ec2: Any, project: str) -> list[dict]:
    found = []
    with aws_action("ec2:DescribeInstances"):
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag:Project", "Values": [project]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                found += reservation["Instances"]
    return sorted(found, key=lambda i: i["InstanceId"])


def ping_status(ssm: Any, instance_ids: list[str]) -> dict[str, str]:
    """SSM's PingStatus per managed instance (Online, ConnectionLost,
    Inactive); an instance SSM does not know is absent."""
    status: dict[str, str] = {}
    for start in range(0, len(instance_ids), INFO_BATCH):
        kwargs: dict[str, Any] = {
            "Filters": [
                {
                    "Key": "InstanceIds",
                    "Values": instance_ids[start : start + INFO_BATCH],
                }
            ]
        }
        while True:
            with aws_action("ssm:DescribeInstanceInformation"):
                page = ssm.describe_instance_information(**kwargs)
            for info in page.get("InstanceInformationList", []):
                status[info["InstanceId"]] = info.get("PingStatus", "")
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return status


def _row(instance: dict, region: str, state: str, message: str) -> dict:
    return {
        "instance_id": instance["InstanceId"],
        "name": policies.tag_dict(instance.get("Tags")).get("Name", ""),
        "region": region,
        "state": state,
        "message": message,
    }


def instance_rows(
    grant: AccessRequest, *, command: Callable[..., dict] | None = None
) -> list[dict]:
    """One row per instance tagged with the project in the role's account and
    session regions: ready, offline, not managed or no OS user."""
    role = grant.role
    project = role.project
    document = (
        os_users.ENSURE_DOCUMENT if project.create_os_users else os_users.CHECK_DOCUMENT
    )
    rows = []
    for region in role.account.session_regions:
        ec2 = aws.client("ec2", role.account, region=region)
        instances = _instances(ec2, project.name)
        if not instances:
            continue
        ssm = aws.client("ssm", role.account, region=region)
        pings = ping_status(ssm, [i["InstanceId"] for i in instances])
        online = []
        for instance in instances:
            state = instance.get("State", {}).get("Name", "")
            ping = pings.get(instance["InstanceId"])
            if ping is None and state == "running":
                rows.append(
                    _row(
                        instance,
                        region,
                        NOT_MANAGED,
                        "SSM does not manage it: the SSM agent is not running or "
                        "its instance profile lacks AmazonSSMManagedInstanceCore.",
                    )
                )
            elif ping != "Online":
                rows.append(
                    _row(
                        instance,
                        region,
                        OFFLINE,
                        f"It is {state or 'not running'}"
                        + (f" (SSM: {ping})" if ping else "")
                        + ": start it (your role may start the project's "
                        "instances).",
                    )
                )
            else:
                online.append(instance)
        results = (command or os_users.run)(
            ssm,
            document=document,
            instance_ids=[i["InstanceId"] for i in online],
            user=role.os_user,
            timeout=conf("READINESS_COMMAND_SECONDS"),
        )
        for instance in online:
            result = results[instance["InstanceId"]]
            rows.append(_os_user_row(instance, region, result, role.os_user, document))
    return rows


def _os_user_row(
    instance: dict, region: str, result: os_users.InstanceResult, user: str, doc: str
) -> dict:
    if result.result == os_users.CREATED:
        return _row(instance, region, READY, f"opsgate created the OS user {user}.")
    if result.result == os_users.EXISTS:
        return _row(instance, region, READY, f"The OS user {user} exists.")
    if result.result == os_users.MISSING:
        return _row(
            instance,
            region,
            NO_OS_USER,
            f"There is no OS user {user}: Session Manager refuses the session.",
        )
    return _row(instance, region, NO_OS_USER, f"Could not run {doc}: {result.message}.")


def instances_check(grant: AccessRequest) -> Check:
    role = grant.role
    title = "Instances"
    where = ", ".join(role.account.session_regions)
    try:
        rows = instance_rows(grant)
    except AwsError as exc:
        return failed_call("instances", title, exc)
    if not rows:
        return Check(
            "instances",
            title,
            True,
            f"No instance carries Project={role.project.name} in "
            f"{role.account.name} ({where}) yet: nothing to connect to.",
        )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    bad = counts.get(NOT_MANAGED, 0) + counts.get(NO_OS_USER, 0)
    fixes = []
    if counts.get(NO_OS_USER):
        fixes.append(
            f"An admin creates the OS user {role.os_user} on the instances marked "
            "'no OS user', or turns on 'Create OS users' for the project so "
            "opsgate creates it (the SSM documents come with the deployment "
            "step: manage.py opsgate_boundaries --apply)."
        )
    if counts.get(NOT_MANAGED):
        fixes.append(
            "An admin installs and starts the SSM agent on the instances marked "
            "'not managed' and gives them an instance profile with "
            "AmazonSSMManagedInstanceCore."
        )
    if not bad and not counts.get(READY):
        fixes.append("Start an instance of the project; then press Check again.")
    ok = bad == 0 and bool(counts.get(READY))
    return Check(
        "instances",
        title,
        ok,
        f"Instances of {role.project.name}: {summary}.",
        fix=" ".join(fixes),
        rows=rows,
    )

"""Is a grant usable? Read back what AWS holds, not what the database says
(issue 25): "Active" means the trust was written; "Ready" means the person can
get in.

The checks, each with what to do when it fails:
- the person's IAM user exists, is in the operators group and has an MFA
  device (without one the group denies everything and the trust refuses);
- the role (GetRole) trusts the person with the MFA and session-name
  conditions of provisioning.policies.trust_policy, has its tags, policies
  and permissions boundary;
- the project's instances in the role's account and session regions:
  online in SSM (DescribeInstanceInformation) and holding the OS run-as user
  (provisioning.os_users; created there when the project opted in);
- with OPSGATE_READINESS_SIMULATE, iam:SimulatePrincipalPolicy as the final
  answer.

A check that may fail only because IAM has not propagated a change yet says
so (`propagating`); the task retries those for READINESS_PROPAGATION_SECONDS
before the result is recorded (provisioning.tasks.check_readiness).
"""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from accounts_app.models import AccessRequest
from accounts_app.services import readiness as readiness_service
from provisioning import aws, baseline, os_users, policies
from provisioning.aws import AwsError, PermanentError, RetryLater, aws_action
from provisioning.iam import parse_document

log = logging.getLogger(__name__)

# Instance rows.
READY, OFFLINE, NOT_MANAGED, NO_OS_USER = (
    "ready",
    "offline",
    "not managed",
    "no OS user",
)
# EC2 states an instance row is read for (terminated ones are gone).
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# DescribeInstanceInformation takes at most 50 instance ids per filter.
INFO_BATCH = 50


def _conf(key: str) -> Any:
    return settings.OPSGATE[key]


@dataclass
class Check:
    key: str
    title: str
    ok: bool
    message: str
    fix: str = ""
    link: str = ""
    rows: list[dict] = field(default_factory=list)
    # May pass once IAM propagated a change made moments ago (or AWS answered
    # "retry later"): retried before it is reported.
    propagating: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outcome:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def propagating(self) -> bool:
        return any(not c.ok and c.propagating for c in self.checks)


def mfa_console_link(*, account_id: str, user_name: str) -> str:
    """The IAM console page where the person assigns an MFA device (their
    user's Security credentials tab), reached after signing in to their
    account."""
    page = f"/iam/home#/users/details/{quote(user_name, safe='')}"
    return (
        f"https://{account_id}.signin.aws.amazon.com/console/iam?"
        f"redirect_uri={quote('https://console.aws.amazon.com' + page, safe='')}"
        "%3Fsection%3Dsecurity_credentials"
    )


def _failed_call(key: str, title: str, exc: AwsError) -> Check:
    """A check AWS did not answer: never Ready, with AWS's message."""
    return Check(
        key,
        title,
        False,
        f"Could not check: {exc.message}",
        fix="opsgate's access to the account may be missing a permission, or "
        "AWS is unavailable. Press Check again later; an admin sees the same "
        "message.",
        propagating=isinstance(exc, RetryLater),
    )


# --- The person's IAM user ---------------------------------------------------


def user_checks(grant: AccessRequest, *, recent: bool) -> list[Check]:
    person = grant.requester
    account = person.account
    iam = aws.client("iam", account)
    name = person.name
    title = "Your IAM user"
    try:
        with aws_action("iam:GetUser"):
            iam.get_user(UserName=name)
    except PermanentError as exc:
        if exc.code != "NoSuchEntity":
            return [_failed_call("iam_user", title, exc)]
        return [
            Check(
                "iam_user",
                title,
                False,
                f"Your IAM user {name} does not exist in account {account.account_id}.",
                fix="opsgate creates it; an admin sees why it has not on your "
                "page under People.",
                propagating=recent,
            )
        ]
    except AwsError as exc:
        return [_failed_call("iam_user", title, exc)]
    checks = [Check("iam_user", title, True, f"{name} exists in {account.account_id}.")]
    group = _conf("GROUP_NAME")
    try:
        with aws_action("iam:ListGroupsForUser"):
            pages = iam.get_paginator("list_groups_for_user").paginate(UserName=name)
            groups = {g["GroupName"] for page in pages for g in page["Groups"]}
    except AwsError as exc:
        checks.append(_failed_call("operators_group", "Operators group", exc))
    else:
        checks.append(
            Check("operators_group", "Operators group", True, f"{name} is in {group}.")
            if group in groups
            else Check(
                "operators_group",
                "Operators group",
                False,
                f"{name} is not in the group {group}, whose policies let it "
                "assume roles.",
                fix="An admin retries the sync of your IAM user (People → you → "
                "Retry); opsgate adds it to the group.",
                propagating=recent,
            )
        )
    try:
        with aws_action("iam:ListMFADevices"):
            devices = iam.list_mfa_devices(UserName=name).get("MFADevices", [])
    except AwsError as exc:
        checks.append(_failed_call("mfa", "MFA device", exc))
        return checks
    if devices:
        checks.append(Check("mfa", "MFA device", True, f"{name} has an MFA device."))
    else:
        checks.append(
            Check(
                "mfa",
                "MFA device",
                False,
                f"Your IAM user {name} has no MFA device: AWS denies everything "
                "it does, and the role's trust requires MFA, until you register "
                "one.",
                fix=f"Sign in to the AWS console as {name} (account "
                f"{account.account_id}), open Security credentials, choose "
                f"Assign MFA device and name the virtual device exactly {name}. "
                "Then press Check again.",
                link=mfa_console_link(account_id=account.account_id, user_name=name),
            )
        )
    return checks


# --- The role, read back -------------------------------------------------------


def _person_arn(grant: AccessRequest) -> str:
    person = grant.requester
    return person.arn or policies.user_arn(
        account_id=person.account.account_id,
        path=_conf("IAM_PATH"),
        name=person.name,
        partition=person.account.partition,
    )


def _trust_problem(document: Any, person_arn: str) -> str:
    """ "" when the trust lets the person in with the conditions opsgate
    writes (provisioning.policies.trust_policy), else what is wrong."""
    expected = policies.trust_policy([person_arn])["Statement"]
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    allow = next((s for s in statements if s.get("Sid") == expected[0]["Sid"]), None)
    if allow is None:
        return "The role's trust has no statement for opsgate's operators."
    principals = allow.get("Principal", {}).get("AWS", [])
    if isinstance(principals, str):
        principals = [principals]
    if person_arn not in principals:
        return f"The role's trust does not list {person_arn.rsplit('/', 1)[-1]}."
    if not policies.same_document(
        {k: allow.get(k) for k in ("Effect", "Action", "Condition")},
        {k: expected[0][k] for k in ("Effect", "Action", "Condition")},
    ):
        return (
            "The role's trust lists you without the conditions opsgate writes "
            "(MFA present, session named after your user)."
        )
    if not any(policies.same_document(s, expected[1]) for s in statements):
        return "The role's trust lacks the deny of session tags."
    return ""


def role_checks(grant: AccessRequest, *, recent: bool) -> list[Check]:
    role = grant.role
    iam = aws.client("iam", role.account)
    try:
        with aws_action("iam:GetRole"):
            found = iam.get_role(RoleName=role.role_name)["Role"]
        with aws_action("iam:ListAttachedRolePolicies"):
            attached = {
                p["PolicyArn"]
                for p in iam.list_attached_role_policies(RoleName=role.role_name)[
                    "AttachedPolicies"
                ]
            }
    except PermanentError as exc:
        if exc.code != "NoSuchEntity":
            return [_failed_call("role", "The role", exc)]
        return [
            Check(
                "role",
                "The role",
                False,
                f"The role {role.role_name} does not exist in account "
                f"{role.account.account_id}.",
                fix="opsgate creates it again; an admin sees the role's sync "
                "state on the project page.",
                propagating=recent,
            )
        ]
    except AwsError as exc:
        return [_failed_call("role", "The role", exc)]
    checks = []
    problem = _trust_problem(
        parse_document(found.get("AssumeRolePolicyDocument")), _person_arn(grant)
    )
    checks.append(
        Check(
            "trust",
            "The role's trust",
            not problem,
            problem
            or "The trust lists you, with MFA and your user name as session name.",
            fix=""
            if not problem
            else "opsgate rewrites the trust on its next sync; an admin can retry "
            "the role's sync on the project page.",
            propagating=recent,
        )
    )
    tags = policies.tag_dict(found.get("Tags"))
    wanted = policies.tag_dict(
        policies.role_tags(project=role.project.name, os_user=role.os_user)
    )
    wrong = sorted(k for k, v in wanted.items() if tags.get(k) != v)
    missing = sorted(set(baseline.role_policy_arns(role.account)) - attached)
    boundary = (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    problems = []
    if wrong:
        problems.append(f"tags {', '.join(wrong)} differ")
    if missing:
        names = ", ".join(a.rsplit("/", 1)[-1] for a in missing)
        problems.append(f"policies {names} are not attached")
    if boundary != baseline.boundary_arn(role.account):
        problems.append("the permissions boundary is not on")
    checks.append(
        Check(
            "role_setup",
            "The role's tags, policies and boundary",
            not problems,
            "The role has its tags, policies and boundary."
            if not problems
            else f"The role {role.role_name}: {'; '.join(problems)}.",
            fix=""
            if not problems
            else "An admin reconciles the account (Drift page); opsgate repairs "
            "what it owns.",
            propagating=recent,
        )
    )
    return checks


# --- The project's instances -------------------------------------------------------


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
            timeout=_conf("READINESS_COMMAND_SECONDS"),
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
        return _failed_call("instances", title, exc)
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


# --- iam:SimulatePrincipalPolicy (real AWS only) ----------------------------------


def _decisions(iam: Any, **kwargs: Any) -> list[dict]:
    results = []
    while True:
        with aws_action("iam:SimulatePrincipalPolicy"):
            page = iam.simulate_principal_policy(**kwargs)
        results += page.get("EvaluationResults", [])
        if not page.get("IsTruncated"):
            return results
        kwargs["Marker"] = page["Marker"]


def simulate_check(grant: AccessRequest, instance_rows_: list[dict]) -> Check:
    """The person's user may sts:AssumeRole the role with MFA; the role may
    ssm:StartSession on each ready instance with its Project tag."""
    role = grant.role
    title = "IAM policy simulation"
    role_arn = role.arn or policies.role_arn(
        account_id=role.account.account_id,
        path=_conf("IAM_PATH"),
        name=role.role_name,
        partition=role.account.partition,
    )
    denied = []
    try:
        assume = _decisions(
            aws.client("iam", grant.requester.account),
            PolicySourceArn=_person_arn(grant),
            ActionNames=["sts:AssumeRole"],
            ResourceArns=[role_arn],
            ContextEntries=[
                {
                    "ContextKeyName": "aws:MultiFactorAuthPresent",
                    "ContextKeyValues": ["true"],
                    "ContextKeyType": "boolean",
                }
            ],
        )
        denied += [
            f"sts:AssumeRole on {role.role_name} ({r['EvalDecision']})"
            for r in assume
            if r.get("EvalDecision") != "allowed"
        ]
        targets = [
            instance_arn(role.account, row["region"], row["instance_id"])
            for row in instance_rows_
            if row["state"] == READY
        ]
        if targets:
            sessions = _decisions(
                aws.client("iam", role.account),
                PolicySourceArn=role_arn,
                ActionNames=["ssm:StartSession"],
                ResourceArns=targets,
                ContextEntries=[
                    {
                        "ContextKeyName": key,
                        "ContextKeyValues": [role.project.name],
                        "ContextKeyType": "string",
                    }
                    for key in ("aws:ResourceTag/Project", "aws:PrincipalTag/Project")
                ],
            )
            denied += [
                f"ssm:StartSession on {_last(r.get('EvalResourceName', ''))}"
                f" ({r['EvalDecision']})"
                for r in sessions
                if r.get("EvalDecision") != "allowed"
            ]
    except AwsError as exc:
        return _failed_call("simulate", title, exc)
    if denied:
        return Check(
            "simulate",
            title,
            False,
            f"IAM's policy simulator denies: {'; '.join(denied)}.",
            fix="An admin compares the role and the operators group with the "
            "Drift page; a permission boundary or an SCP may deny it.",
            propagating=True,
        )
    return Check("simulate", title, True, "IAM's policy simulator allows the way in.")


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def instance_arn(account: Any, region: str, instance_id: str) -> str:
    return (
        f"arn:{account.partition}:ec2:{region}:{account.account_id}:"
        f"instance/{instance_id}"
    )


# --- The whole check ---------------------------------------------------------------


def changed_at(grant: AccessRequest) -> datetime | None:
    """When the last change the checks depend on was written to AWS: the
    grant's trust, the role's and the person's last syncs."""
    times = [
        grant.provisioned_at,
        grant.role.last_synced_at,
        grant.requester.last_synced_at,
    ]
    return max((t for t in times if t), default=None)


def check_grant(grant: AccessRequest, *, now: datetime | None = None) -> Outcome:
    """Every check of one grant, read from AWS."""
    now = now or timezone.now()
    since = changed_at(grant)
    window = timedelta(seconds=_conf("READINESS_PROPAGATION_SECONDS"))
    recent = since is not None and now - since < window
    checks = user_checks(grant, recent=recent)
    checks += role_checks(grant, recent=recent)
    instances = instances_check(grant)
    checks.append(instances)
    if _conf("READINESS_SIMULATE"):
        checks.append(simulate_check(grant, instances.rows))
    return Outcome(checks)


def retry_in(
    grant: AccessRequest, outcome: Outcome, *, attempt: int, now=None
) -> float:
    """Seconds until the next try when the outcome may change once IAM
    propagated (0: report it now). Backoff 5, 10, 20, 40 s… within the
    window after the last change."""
    if outcome.ready or not outcome.propagating:
        return 0.0
    now = now or timezone.now()
    since = changed_at(grant) or now
    left = (
        since + timedelta(seconds=_conf("READINESS_PROPAGATION_SECONDS")) - now
    ).total_seconds()
    if left <= 0:
        return 0.0
    return min(5.0 * 2**attempt, left)


def grant_readiness_run(
    *, grant_id: int, attempt: int = 0, retry: bool = True
) -> float:
    """Check one grant and record the outcome; returns seconds until the task
    should try again (IAM propagation), 0 when recorded. A grant that ended,
    or has not started, is not checked."""
    grant = readiness_service.checkable_grant(grant_id)
    if grant is None:
        readiness_service.readiness_stop(grant_id=grant_id)
        return 0.0
    try:
        outcome = check_grant(grant)
    except AwsError as exc:  # a call outside a check's own guard
        outcome = Outcome([_failed_call("aws", "AWS", exc)])
    wait = retry_in(grant, outcome, attempt=attempt) if retry else 0.0
    if wait:
        log.info("grant %s not ready yet, IAM may be propagating: %ss", grant_id, wait)
        return wait
    readiness_service.readiness_record(
        grant_id=grant_id,
        checks=[c.as_dict() for c in outcome.checks],
        ready=outcome.ready,
    )
    return 0.0

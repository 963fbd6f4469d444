"""The OS run-as user on a project's instances (issue 25): the two SSM Command
documents the deployment step ships, run with SendCommand and read back with
GetCommandInvocation.

`opsgate-CheckOsUser` only looks; `opsgate-EnsureOsUser` creates a locked local
user with a home directory and no sudo, idempotently (only for projects that
opted in: Project.create_os_users). Each takes one parameter, `UserName`. On
success the command's standard output holds exactly one line
`opsgate-os-user: exists`, `… created` or `… missing`; a failure is the
invocation's status Failed. opsgate never deletes the OS user: files on the
instance may belong to it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioning import os_user_documents
from provisioning.aws import AwsError, PermanentError, aws_action

# The documents and their answers are provisioning.os_user_documents' (the
# deployment step creates them; provisioning.moto_ext_run_command simulates
# them).
CHECK_DOCUMENT = os_user_documents.CHECK
ENSURE_DOCUMENT = os_user_documents.ENSURE
MARKER = os_user_documents.RESULT_PREFIX.strip()

EXISTS = os_user_documents.EXISTS
CREATED = os_user_documents.CREATED
MISSING = os_user_documents.MISSING
FAILED, PENDING = "failed", "pending"
ANSWERS = {EXISTS, CREATED, MISSING}

# SendCommand takes at most 50 instance ids.
SEND_BATCH = 50
# Invocation statuses that are still moving.
MOVING = {"Pending", "InProgress", "Delayed", "Cancelling"}
# How often the invocations are read while the command runs.
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class InstanceResult:
    instance_id: str
    result: str  # exists, created, missing, failed, pending
    message: str = ""

    @property
    def has_user(self) -> bool:
        return self.result in (EXISTS, CREATED)


def _answers(output: str) -> list[str]:
    return [
        line.strip()[len(MARKER) :].strip()
        for line in (output or "").splitlines()
        if line.strip().startswith(MARKER)
    ]


def parse_output(output: str, document: str | None = None) -> str | None:
    """The answer line of a successful invocation; None unless there is
    exactly one and it is an answer `document` gives (Check: exists or
    missing; Ensure: exists or created; any of the three without one)."""
    answers = _answers(output)
    allowed = os_user_documents.RESULTS.get(document or "", ANSWERS)
    if len(answers) != 1 or answers[0] not in allowed:
        return None
    return answers[0]


def send(ssm: Any, *, document: str, instance_ids: list[str], user: str) -> list[str]:
    """Send `document` for OS user `user` to the instances (in batches of
    50). Returns the command ids, one per batch."""
    ids = []
    for start in range(0, len(instance_ids), SEND_BATCH):
        batch = instance_ids[start : start + SEND_BATCH]
        with aws_action("ssm:SendCommand"):
            sent = ssm.send_command(
                DocumentName=document,
                InstanceIds=batch,
                Parameters={"UserName": [user]},
                Comment=f"opsgate: OS user {user}",
            )
        ids.append(sent["Command"]["CommandId"])
    return ids


def invocation_result(
    invocation: dict, document: str | None = None
) -> InstanceResult | None:
    """One GetCommandInvocation answer as a result; None while it runs. A
    Success without an answer line is no answer: the documents' one step runs
    on Linux only, and SSM skips it (Success, nothing printed) elsewhere."""
    instance_id = invocation.get("InstanceId", "")
    status = invocation.get("Status", "")
    if status in MOVING:
        return None
    if status == "Success":
        output = invocation.get("StandardOutputContent", "")
        answer = parse_output(output, document or invocation.get("DocumentName"))
        if answer is None and not _answers(output):
            return InstanceResult(
                instance_id,
                FAILED,
                "the document printed no 'opsgate-os-user: "
                "exists|created|missing' line: its step did not run (the "
                "documents run on Linux instances only)",
            )
        if answer is None:
            return InstanceResult(
                instance_id,
                FAILED,
                "the document's output has no single "
                f"'{MARKER} exists|created|missing' line",
            )
        return InstanceResult(instance_id, answer)
    detail = invocation.get("StatusDetails") or status or "no status"
    error = (invocation.get("StandardErrorContent") or "").strip().splitlines()
    message = f"the command ended {detail}"
    if error:
        message += f": {error[-1][:200]}"
    return InstanceResult(instance_id, FAILED, message)


def read(
    ssm: Any, *, command_id: str, instance_id: str, document: str | None = None
) -> InstanceResult | None:
    """GetCommandInvocation for one instance; None while it runs (or before
    SSM registered the invocation: InvocationDoesNotExist)."""
    try:
        with aws_action("ssm:GetCommandInvocation"):
            invocation = ssm.get_command_invocation(
                CommandId=command_id, InstanceId=instance_id
            )
    except PermanentError as exc:
        if exc.code == "InvocationDoesNotExist":
            return None
        raise
    return invocation_result({"InstanceId": instance_id, **invocation}, document)


def run(
    ssm: Any,
    *,
    document: str,
    instance_ids: list[str],
    user: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, InstanceResult]:
    """Send the document and read each instance's answer until `timeout`
    seconds passed; instances still running then are PENDING. A failing
    SendCommand makes every instance FAILED with AWS's message."""
    if not instance_ids:
        return {}
    try:
        command_ids = send(ssm, document=document, instance_ids=instance_ids, user=user)
    except AwsError as exc:
        return {i: InstanceResult(i, FAILED, exc.message) for i in instance_ids}
    batches = {
        command_id: instance_ids[n * SEND_BATCH : (n + 1) * SEND_BATCH]
        for n, command_id in enumerate(command_ids)
    }
    results: dict[str, InstanceResult] = {}
    deadline = clock() + timeout
    while True:
        for command_id, batch in batches.items():
            for instance_id in batch:
                if instance_id in results:
                    continue
                try:
                    found = read(
                        ssm,
                        command_id=command_id,
                        instance_id=instance_id,
                        document=document,
                    )
                except AwsError as exc:
                    found = InstanceResult(instance_id, FAILED, exc.message)
                if found is not None:
                    results[instance_id] = found
        if len(results) == len(instance_ids) or clock() >= deadline:
            break
        sleep(POLL_SECONDS)
    for instance_id in instance_ids:
        results.setdefault(
            instance_id,
            InstanceResult(instance_id, PENDING, f"no answer within {int(timeout)} s"),
        )
    return results

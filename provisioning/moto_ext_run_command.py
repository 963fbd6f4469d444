"""moto's Run Command for opsgate's two SSM documents (issue 25).

moto 5 accepts SendCommand for any document name, parameters and instance,
runs nothing, and answers every GetCommandInvocation with Success and an empty
output. For opsgate-CheckOsUser and opsgate-EnsureOsUser, `install()` makes it
behave like SSM and the documents' scripts (provisioning.os_user_documents):

- the document must exist in the account and region (InvalidDocument), the
  parameters must be exactly the document's, one value each, matching its
  allowedPattern (InvalidParameters), and each instance named must exist and
  be running (InvalidInstanceId);
- each instance holds a set of OS users, per account, region and instance:
  ec2-user and ssm-user, plus the names in the instance's tag `moto:os-users`
  (separated by spaces or commas), so a test or the demo can say what is
  there before opsgate looks;
- Check answers `opsgate-os-user: exists|missing`; Ensure adds the user and
  answers `created`, or `exists`; root is refused by the script (exit 2) even
  when a document's pattern would let it through;
- an instance tagged `moto:os-user-failure` (any value: the error text)
  fails every run of either document: Status Failed, ResponseCode 1, the text
  on standard error, nothing on standard output;
- GetCommandInvocation then answers with SSM's shapes (Status, StatusDetails,
  ResponseCode, StandardOutputContent, StandardErrorContent, PluginName = the
  document's step name, DocumentVersion); the command's status is Failed when
  any of its invocations failed.

And a document a CloudFormation stack creates keeps its content as JSON text,
as in SSM. Everything lives on moto's SSM backend object, so moto's reset empties it.
Other documents keep moto's own behaviour. opsgate itself never imports this
module: provisioning.moto_ext.install() does (the demo's moto server, the
tests).
"""

import json
import re
from typing import Any

from provisioning import os_user_documents

USERS_TAG = "moto:os-users"
FAILURE_TAG = "moto:os-user-failure"
SEEDED_USERS = ("ec2-user", "ssm-user")


def install() -> None:
    """Teach moto's SSM backend opsgate's two documents (idempotent)."""
    from moto.ssm import models

    backend_class = models.SimpleSystemManagerBackend
    if getattr(backend_class, "_opsgate_run_command", False):
        return
    send_command = backend_class.send_command

    def send_opsgate_command(self: Any, **kwargs: Any) -> Any:
        name = kwargs.get("document_name")
        if name not in os_user_documents.NAMES:
            return send_command(self, **kwargs)
        version, content = _default_version(self, name)
        user = _parameter(content, kwargs.get("parameters") or {})
        for instance_id in kwargs.get("instance_ids") or []:
            _running_instance(self, instance_id)
        # Before moto's Command, which extends the InstanceIds list it is given.
        targets = _targets(self, kwargs)
        command = send_command(self, **kwargs)
        command.instance_ids = targets
        _run(self, command, name=name, version=version, content=content, user=user)
        return command

    create_document = backend_class.create_document

    def create_document_as_text(self: Any, **kwargs: Any) -> Any:
        # A CloudFormation template gives Content as an object; SSM keeps it
        # as JSON text (moto kept the dict, and GetDocument showed its repr).
        if isinstance(kwargs.get("content"), dict):
            kwargs["content"] = json.dumps(kwargs["content"])
            kwargs["document_format"] = "JSON"
        return create_document(self, **kwargs)

    backend_class.send_command = send_opsgate_command
    backend_class.create_document = create_document_as_text
    backend_class._opsgate_run_command = True


def _error(code: str, message: str) -> Exception:
    from moto.ssm.exceptions import SSMException

    return SSMException(code, message)


def _default_version(backend: Any, name: str) -> tuple[str, dict]:
    document = backend._get_documents(name).get_default_version()
    content = document.content
    return document.document_version, (
        content if isinstance(content, dict) else json.loads(content)
    )


def _parameter(content: dict, given: dict[str, Any]) -> str:
    """The UserName value, validated the way SSM validates parameters."""
    declared = content.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise _error(
            "InvalidParameters",
            f"Parameters {unknown} are not defined in the document.",
        )
    name = os_user_documents.PARAMETER
    values = given.get(name)
    if values is None:
        raise _error("InvalidParameters", f'Parameter "{name}" is required.')
    if not isinstance(values, list) or len(values) != 1:
        raise _error(
            "InvalidParameters", f'Parameter "{name}" takes exactly one value.'
        )
    value = values[0]
    pattern = declared[name].get("allowedPattern")
    if pattern and not re.search(pattern, value):
        raise _error(
            "InvalidParameters",
            f'Parameter "{name}" value "{value}" does not match the allowed '
            f"pattern {pattern}.",
        )
    return value


def _running_instance(backend: Any, instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    try:
        instance = ec2.get_instance(instance_id)
    except Exception:
        instance = None
    if instance is None or instance._state.name != "running":
        raise _error(
            "InvalidInstanceId",
            f"Instances [[{instance_id}]] not in a valid state for account "
            f"{backend.account_id}",
        )
    return instance


def _targets(backend: Any, kwargs: dict) -> list[str]:
    """The instances a command names, in order: its InstanceIds and the
    instances its Targets select (moto's own Command adds every instance of
    the region when there are no Targets)."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    found = list(kwargs.get("instance_ids") or [])
    for target in kwargs.get("targets") or []:
        if target["Key"] == "InstanceIds":
            found += target["Values"]
            continue
        for reservation in ec2.all_reservations(
            filters={target["Key"]: target["Values"]}
        ):
            found += [instance.id for instance in reservation.instances]
    return list(dict.fromkeys(found))


def _tags(backend: Any, instance_id: str) -> dict[str, str]:
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    return dict(ec2.tags.get(instance_id, {}))


def users_on(backend: Any, instance_id: str) -> set[str]:
    """The OS users of one instance (seeded on first look)."""
    every = backend.__dict__.setdefault("_opsgate_os_users", {})
    if instance_id not in every:
        named = _tags(backend, instance_id).get(USERS_TAG, "")
        every[instance_id] = {*SEEDED_USERS, *re.split(r"[\s,]+", named)} - {""}
    return every[instance_id]


def _script(backend: Any, *, name: str, user: str, instance_id: str) -> tuple:
    """(exit code, standard output, standard error) of the document's script."""
    failure = _tags(backend, instance_id).get(FAILURE_TAG)
    if failure is not None:
        return 1, "", f"{failure}\n"
    if user == "root" or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user):
        return 2, "", "opsgate: refused: not an unprivileged Linux user name\n"
    users = users_on(backend, instance_id)
    if user in users:
        result = os_user_documents.EXISTS
    elif name == os_user_documents.CHECK:
        result = os_user_documents.MISSING
    else:
        users.add(user)
        result = os_user_documents.CREATED
    return 0, f"{os_user_documents.RESULT_PREFIX}{result}\n", ""


def _run(
    backend: Any, command: Any, *, name: str, version: str, content: dict, user: str
) -> None:
    running = []
    for instance_id in command.instance_ids:
        try:
            _running_instance(backend, instance_id)
        except Exception:
            continue  # a tag target that is stopped: SSM does not reach it
        running.append(instance_id)
    command.instance_ids = running
    step = os_user_documents.step_name(content)
    invocations = []
    for instance_id in running:
        code, out, err = _script(backend, name=name, user=user, instance_id=instance_id)
        invocation = command.invocation_response(instance_id, step)
        status = "Success" if code == 0 else "Failed"
        invocation.update(
            DocumentVersion=version,
            ResponseCode=code,
            Status=status,
            StatusDetails=status,
            StandardOutputContent=out,
            StandardErrorContent=err,
        )
        invocations.append(invocation)
    command.invocations = invocations
    command.error_count = sum(i["Status"] == "Failed" for i in invocations)
    command.completed_count = command.target_count = len(invocations)
    command.status = command.status_details = (
        "Failed" if command.error_count else "Success"
    )

"""Helpers for the readiness tests (issue 25).

`OsUserSim` stands in for the run-command simulation of the OS-user documents
(provisioning/moto_ext_run_command.py, built on another branch): moto's own
SendCommand answers Success with empty output, so until that lands these tests
teach the in-process moto server the documents' contract: one line
`opsgate-os-user: exists|created|missing`. The lead runs the same tests against
the real simulation after the merge (drop the fixture then).
"""

import boto3

from provisioning import os_users
from provisioning.aws import client as real_client


class OsUserSim:
    def __init__(self) -> None:
        self.users: dict[str, set[str]] = {}
        self.failing: set[str] = set()
        self.sent: list[tuple[str, list[str], dict]] = []

    def answer(self, command, instance_id: str) -> dict:
        user = (command.parameters or {}).get("UserName", [""])[0]
        have = self.users.setdefault(instance_id, set())
        if instance_id in self.failing:
            return {
                "Status": "Failed",
                "StatusDetails": "Failed",
                "StandardOutputContent": "",
                "StandardErrorContent": "useradd: cannot lock /etc/passwd\n",
                "ResponseCode": 1,
            }
        if command.document_name == os_users.ENSURE_DOCUMENT:
            line = "exists" if user in have else "created"
            have.add(user)
        elif command.document_name == os_users.CHECK_DOCUMENT:
            line = "exists" if user in have else "missing"
        else:
            return {}
        return {"StandardOutputContent": f"some log line\nopsgate-os-user: {line}\n"}


def install_os_user_sim(monkeypatch) -> OsUserSim:
    from moto.ssm import models

    sim = OsUserSim()
    original = models.Command.invocation_response

    def invocation_response(self, instance_id, plugin_name):
        response = original(self, instance_id, plugin_name)
        response.update(sim.answer(self, instance_id))
        return response

    monkeypatch.setattr(models.Command, "invocation_response", invocation_response)
    return sim


def real_ssm(monkeypatch) -> None:
    """opsgate's SSM client is moto's again (conftest's FakeSsm stands in for
    it everywhere else: moto has no Session Manager sessions)."""
    from provisioning import aws

    monkeypatch.setattr(aws, "client", real_client)


def register_mfa(name: str) -> str:
    """A virtual MFA device named after the IAM user, enabled on it (in moto)."""
    iam = boto3.client("iam", region_name="us-east-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)[
        "VirtualMFADevice"
    ]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    return serial

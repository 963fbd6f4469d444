"""What moto (the demo's and the tests' AWS) lacks and opsgate relies on:
permissions boundaries on IAM users, SSM's DescribeInstanceInformation, and
(provisioning.moto_ext_run_command) Run Command for opsgate's two OS-user SSM
documents.

moto 5 ignores `PermissionsBoundary` in CreateUser, returns none in GetUser and
GetAccountAuthorizationDetails, and does not implement
PutUserPermissionsBoundary or DeleteUserPermissionsBoundary. `install()` adds
them the way IAM behaves: the boundary must name an existing managed policy
(NoSuchEntity otherwise), and GetUser, CreateUser and the authorization details
show it. opsgate itself never imports this module: the demo's moto server
(`python -m provisioning.moto_ext`), the demo's seed, the tests and the
benchmarks do.

SSM's DescribeInstanceInformation (the readiness check, issue 25) answers from
moto's EC2 instances of the same account and region, in the real response
shape: a running instance is an SSM-managed Linux instance that is Online, a
pending, stopping or stopped one is ConnectionLost, a terminated one is gone.
An instance tagged `opsgate-sim:ssm=unmanaged` (UNMANAGED_TAG) has no SSM
agent: SSM does not list it (the "not managed" row of the demo and the tests).
"""

import sys
from typing import Any

# Tag an EC2 instance in moto with this (value "unmanaged") to have SSM not
# know it, as an instance without the SSM agent.
UNMANAGED_TAG = ("opsgate-sim:ssm", "unmanaged")


def enable_virtual_mfa(iam: Any, user_name: str) -> str:
    """A virtual MFA device named after the IAM user, enabled on it, with the
    two codes moto takes (real IAM would want two consecutive TOTP codes of
    the device's seed): the "has registered MFA" of the demo, the tests and
    the benchmarks. Returns the device's serial number."""
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user_name)[
        "VirtualMFADevice"
    ]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=user_name,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    return serial


def install() -> None:
    """Teach moto what opsgate needs of it (idempotent)."""
    from provisioning import moto_ext_run_command

    _install_user_boundaries()
    _install_instance_information()
    moto_ext_run_command.install()  # opsgate's two SSM documents (issue 25)


def _instance_information(instance: Any, account_id: str) -> dict[str, Any] | None:
    """DescribeInstanceInformation's entry for one moto EC2 instance (None:
    SSM does not know it)."""
    tags = {t["key"]: t["value"] for t in instance.get_tags()}
    if tags.get(UNMANAGED_TAG[0]) == UNMANAGED_TAG[1]:
        return None
    if instance.state == "terminated":
        return None
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online" if instance.state == "running" else "ConnectionLost",
        "LastPingDateTime": instance.launch_time,
        "AgentVersion": "3.3.1142.0",
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "PlatformVersion": "2023",
        "ResourceType": "EC2Instance",
        "IPAddress": instance.private_ip or "",
        "ComputerName": instance.private_dns_name,
        "AssociationStatus": "Success",
        "SourceId": instance.id,
        "SourceType": "AWS::EC2::Instance",
    }


def _install_instance_information() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2 import ec2_backends
    from moto.ssm import responses

    cls = responses.SimpleSystemManagerResponse
    if getattr(cls, "_opsgate_instance_information", False):
        return

    def describe_instance_information(self: Any) -> Any:
        wanted: set[str] | None = None
        for f in self._get_param("Filters") or []:
            if f.get("Key") == "InstanceIds":
                wanted = (wanted or set()) | set(f.get("Values") or [])
        for f in self._get_param("InstanceInformationFilterList") or []:
            if f.get("key") == "InstanceIds":
                wanted = (wanted or set()) | set(f.get("valueSet") or [])
        ec2 = ec2_backends[self.current_account][self.region]
        found = []
        for reservation in ec2.all_reservations():
            for instance in reservation.instances:
                if wanted is not None and instance.id not in wanted:
                    continue
                info = _instance_information(instance, self.current_account)
                if info is not None:
                    found.append(info)
        found.sort(key=lambda i: i["InstanceId"])
        return ActionResult({"InstanceInformationList": found})

    cls.describe_instance_information = describe_instance_information
    cls._opsgate_instance_information = True


def _install_user_boundaries() -> None:
    """Teach moto's IAM user permissions boundaries (idempotent)."""
    from moto.core.responses import EmptyResult
    from moto.core.serialize import never_return
    from moto.iam import models, responses

    if getattr(models.User, "permissions_boundary_arn", "absent") != "absent":
        return

    def permissions_boundary(user: Any) -> dict[str, str] | None:
        if not user.permissions_boundary_arn:
            return None
        return {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": user.permissions_boundary_arn,
        }

    models.User.permissions_boundary_arn = None
    models.User.permissions_boundary = property(permissions_boundary)

    def _existing_boundary(response: Any) -> str | None:
        arn = response._get_param("PermissionsBoundary")
        if arn:
            response.backend.get_policy(arn)  # NoSuchEntity, as IAM answers
        return arn

    create_user = responses.IamResponse.create_user

    def create_user_with_boundary(self: Any) -> Any:
        arn = _existing_boundary(self)
        result = create_user(self)
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = arn
        return result

    def put_user_permissions_boundary(self: Any) -> Any:
        arn = _existing_boundary(self)
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = arn
        return EmptyResult()

    def delete_user_permissions_boundary(self: Any) -> Any:
        self.backend.get_user(
            self._get_param("UserName")
        ).permissions_boundary_arn = None
        return EmptyResult()

    # As in IAM, ListUsers leaves the boundary out (GetUser shows it).
    responses.IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER[
        "ListUsersResponse.Users.User.PermissionsBoundary"
    ] = never_return
    responses.IamResponse.create_user = create_user_with_boundary
    responses.IamResponse.put_user_permissions_boundary = put_user_permissions_boundary
    responses.IamResponse.delete_user_permissions_boundary = (
        delete_user_permissions_boundary
    )


def main(argv: list[str] | None = None) -> None:
    """`moto_server` with user permissions boundaries (same arguments)."""
    from moto.server import main as moto_main

    install()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()

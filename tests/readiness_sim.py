"""Helpers for the readiness tests (issue 25).

The OS-user documents run in moto's Run Command simulation
(provisioning/moto_ext_run_command.py, installed with provisioning.moto_ext):
each instance holds ec2-user and ssm-user plus the names of its tag
`moto:os-users`; an instance tagged `moto:os-user-failure` fails every run.
The documents exist once the deployment step created them
(`deploy_documents`, provisioning.os_user_deploy.apply).
"""

import boto3

from provisioning import moto_ext, os_user_deploy
from provisioning.aws import client as real_client
from provisioning.moto_ext_run_command import FAILURE_TAG, USERS_TAG, users_on

ACCOUNT_ID = "123456789012"  # moto's default account (the hub's)


def real_ssm(monkeypatch) -> None:
    """opsgate's SSM client is moto's again (conftest's FakeSsm stands in for
    it everywhere else: moto has no Session Manager sessions)."""
    from provisioning import aws

    monkeypatch.setattr(aws, "client", real_client)


def deploy_documents(account=None, regions=("us-east-1",)) -> None:
    """The deployment step: both OS-user documents in the account's regions
    (None: the hub, with moto's default credentials)."""
    moto_ext.install()
    os_user_deploy.apply(regions=regions, account=account)


def give_os_users(ec2, instance_id: str, *names: str) -> None:
    """The instance holds these OS users (besides ec2-user and ssm-user)
    before opsgate first looks."""
    ec2.create_tags(
        Resources=[instance_id], Tags=[{"Key": USERS_TAG, "Value": " ".join(names)}]
    )


def break_os_user_runs(ec2, instance_id: str, error: str) -> None:
    """Every run of either document on the instance fails with `error` on
    standard error."""
    ec2.create_tags(
        Resources=[instance_id], Tags=[{"Key": FAILURE_TAG, "Value": error}]
    )


def os_users_on(
    instance_id: str, *, account_id: str = ACCOUNT_ID, region: str = "us-east-1"
) -> set[str]:
    """The OS users the simulation holds on an instance: the set itself (add
    to it to have a user made behind opsgate's back)."""
    from moto.ssm.models import ssm_backends

    return users_on(ssm_backends[account_id][region], instance_id)


def register_mfa(name: str) -> str:
    """A virtual MFA device named after the IAM user, enabled on it (in moto)."""
    iam = boto3.client("iam", region_name="us-east-1")
    serial = moto_ext.enable_virtual_mfa(iam, name)
    return serial

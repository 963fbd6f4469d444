"""moto runs opsgate's two SSM documents (provisioning/moto_ext_run_command.py,
installed with provisioning.moto_ext by tests/conftest.py), seen with plain
boto3: SSM's errors for a missing document, a bad parameter and an instance
that is not running; per-instance OS users; GetCommandInvocation's shapes."""

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioning import os_user_deploy, os_user_documents
from provisioning.moto_ext_run_command import FAILURE_TAG, USERS_TAG
from provisioning.os_user_documents import CHECK, ENSURE
from tests.helpers import amazon_linux_image

REGION = "eu-west-1"


@pytest.fixture
def ssm(aws_env):
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def ec2(aws_env):
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def documents(ssm):
    os_user_deploy.apply(regions=[REGION], client=lambda region: ssm)


@pytest.fixture
def launch(ec2):
    image = amazon_linux_image(ec2)

    def launch(**tags: str) -> str:
        spec = [{"Key": k, "Value": v} for k, v in tags.items()]
        kwargs = {"TagSpecifications": [{"ResourceType": "instance", "Tags": spec}]}
        return ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, **(kwargs if spec else {})
        )["Instances"][0]["InstanceId"]

    return launch


def run(ssm, document: str, instance: str, user: str) -> dict:
    command = ssm.send_command(
        DocumentName=document,
        InstanceIds=[instance],
        Parameters={"UserName": [user]},
    )["Command"]
    return ssm.get_command_invocation(
        CommandId=command["CommandId"], InstanceId=instance
    )


def test_check_and_ensure_answer_with_the_contract_line(ssm, documents, launch):
    instance = launch(Project="payments")
    checked = run(ssm, CHECK, instance, "deploy")
    assert {k: checked[k] for k in ("Status", "StatusDetails", "ResponseCode")} == {
        "Status": "Success",
        "StatusDetails": "Success",
        "ResponseCode": 0,
    }
    assert checked["StandardOutputContent"] == "opsgate-os-user: missing\n"
    assert checked["StandardErrorContent"] == ""
    assert checked["PluginName"] == "checkOsUser"
    assert checked["DocumentName"] == CHECK
    assert checked["DocumentVersion"] == "1"
    assert checked["InstanceId"] == instance

    created = run(ssm, ENSURE, instance, "deploy")
    assert created["StandardOutputContent"] == "opsgate-os-user: created\n"
    assert created["PluginName"] == "ensureOsUser"
    assert run(ssm, CHECK, instance, "deploy")["StandardOutputContent"] == (
        "opsgate-os-user: exists\n"
    )
    assert run(ssm, ENSURE, instance, "deploy")["StandardOutputContent"] == (
        "opsgate-os-user: exists\n"
    )


def test_users_are_per_instance_and_seeded_from_a_tag(ssm, documents, launch):
    plain = launch(Project="payments")
    seeded = launch(Project="payments", **{USERS_TAG: "app, deploy web"})
    for user in ("ec2-user", "ssm-user"):
        assert run(ssm, CHECK, plain, user)["StandardOutputContent"].endswith(
            "exists\n"
        )
    for user in ("app", "deploy", "web"):
        assert run(ssm, CHECK, seeded, user)["StandardOutputContent"].endswith(
            "exists\n"
        )
        assert run(ssm, CHECK, plain, user)["StandardOutputContent"].endswith(
            "missing\n"
        )
    run(ssm, ENSURE, plain, "batch")
    assert run(ssm, CHECK, seeded, "batch")["StandardOutputContent"].endswith(
        "missing\n"
    )


def test_an_instance_tagged_to_fail_fails_every_run(ssm, documents, launch):
    instance = launch(Project="payments", **{FAILURE_TAG: "useradd: cannot lock"})
    for document in (CHECK, ENSURE):
        failed = run(ssm, document, instance, "deploy")
        assert failed["Status"] == failed["StatusDetails"] == "Failed"
        assert failed["ResponseCode"] == 1
        assert failed["StandardOutputContent"] == ""
        assert failed["StandardErrorContent"] == "useradd: cannot lock\n"
    listed = ssm.list_commands(InstanceId=instance)["Commands"]
    assert {c["Status"] for c in listed} == {"Failed"}
    assert {c["ErrorCount"] for c in listed} == {1}


def test_a_tag_target_reaches_the_running_instances_with_the_tag(
    ssm, ec2, documents, launch
):
    first, second = launch(Project="payments"), launch(Project="payments")
    stopped, other = launch(Project="payments"), launch(Project="billing")
    ec2.stop_instances(InstanceIds=[stopped])
    command = ssm.send_command(
        DocumentName=ENSURE,
        Targets=[{"Key": "tag:Project", "Values": ["payments"]}],
        Parameters={"UserName": ["deploy"]},
    )["Command"]
    assert sorted(command["InstanceIds"]) == sorted([first, second])
    assert command["Status"] == "Success"
    for instance in (first, second):
        assert run(ssm, CHECK, instance, "deploy")["StandardOutputContent"].endswith(
            "exists\n"
        )
    assert run(ssm, CHECK, other, "deploy")["StandardOutputContent"].endswith(
        "missing\n"
    )


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"UserName": ["root"]}, 'Parameter "UserName" value "root" does not match'),
        ({"UserName": ["Deploy"]}, "does not match the allowed pattern"),
        ({"UserName": ["x'; reboot; '"]}, "does not match the allowed pattern"),
        ({"UserName": ["a" * 33]}, "does not match the allowed pattern"),
        ({}, 'Parameter "UserName" is required'),
        ({"UserName": ["a", "b"]}, "takes exactly one value"),
        ({"UserName": ["a"], "Shell": ["x"]}, "['Shell'] are not defined"),
    ],
)
def test_a_bad_parameter_is_refused_before_anything_runs(
    ssm, documents, launch, parameters, message
):
    instance = launch(Project="payments")
    with pytest.raises(ClientError) as info:
        ssm.send_command(
            DocumentName=ENSURE, InstanceIds=[instance], Parameters=parameters
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameters"
    assert message in info.value.response["Error"]["Message"]
    assert ssm.list_commands()["Commands"] == []


def test_the_pattern_checked_is_the_documents_own(ssm, documents, launch):
    """A document edited to let root through: the script still refuses it."""
    loose = os_user_documents.ensure_document()
    loose["parameters"]["UserName"]["allowedPattern"] = "^.*$"
    ssm.update_document(
        Name=ENSURE, Content=os_user_deploy.text(loose), DocumentVersion="$LATEST"
    )
    ssm.update_document_default_version(Name=ENSURE, DocumentVersion="2")
    instance = launch(Project="payments")
    refused = run(ssm, ENSURE, instance, "root")
    assert (refused["Status"], refused["ResponseCode"]) == ("Failed", 2)
    assert refused["StandardOutputContent"] == ""
    assert "refused" in refused["StandardErrorContent"]
    assert refused["DocumentVersion"] == "2"


def test_a_missing_document_or_instance_is_refused(ssm, ec2, documents, launch):
    instance = launch(Project="payments")
    other_region = boto3.client("ssm", region_name="us-east-1")
    with pytest.raises(ClientError) as info:
        other_region.send_command(
            DocumentName=CHECK,
            InstanceIds=[instance],
            Parameters={"UserName": ["deploy"]},
        )
    assert info.value.response["Error"]["Code"] == "InvalidDocument"
    ec2.stop_instances(InstanceIds=[instance])
    for target in (instance, "i-0123456789abcdef0"):
        with pytest.raises(ClientError) as info:
            run(ssm, CHECK, target, "deploy")
        assert info.value.response["Error"]["Code"] == "InvalidInstanceId"
        assert target in info.value.response["Error"]["Message"]


def test_other_documents_keep_motos_behaviour(ssm, launch):
    instance = launch(Project="payments")
    command = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[instance],
        Parameters={"commands": ["id"]},
    )["Command"]
    invocation = ssm.get_command_invocation(
        CommandId=command["CommandId"], InstanceId=instance
    )
    assert invocation["Status"] == "Success"
    assert invocation["StandardOutputContent"] == ""
    assert invocation["PluginName"] == "aws:runShellScript"


def test_a_reset_of_moto_forgets_the_users(ssm, documents, launch, aws_env):
    import urllib.request

    instance = launch(Project="payments")
    run(ssm, ENSURE, instance, "deploy")
    request = urllib.request.Request(f"{aws_env}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=120).read()
    os_user_deploy.apply(regions=[REGION], client=lambda region: ssm)
    again = launch(Project="payments")
    assert run(ssm, CHECK, again, "deploy")["StandardOutputContent"].endswith(
        "missing\n"
    )

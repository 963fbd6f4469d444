"""The readiness check at the boto3 edge (issue 25), with botocore's Stubber
and response shapes recorded from AWS: the OS-user documents (SendCommand,
GetCommandInvocation), SSM's DescribeInstanceInformation and IAM's
SimulatePrincipalPolicy, which moto lacks or answers without output.

The Stubber checks every request against botocore's service model, so a
wrong parameter name or type fails here as AWS would refuse it."""

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
)
from provisioning import aws, os_users, readiness

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
# Command ids are UUIDs.
C0, C1, C2 = (f"{n}1a2b3c4-5d6e-4f70-8a9b-0c1d2e3f4a5b" for n in "012")
CA, CB = "a1a2b3c4-5d6e-4f70-8a9b-0c1d2e3f4a5b", "b1a2b3c4-5d6e-4f70-8a9b-0c1d2e3f4a5b"
ROLE_ARN = "arn:aws:iam::123456789012:role/opsgate/payments-deploy"
USER_ARN = "arn:aws:iam::123456789012:user/opsgate/carol"


def ssm_client():
    return boto3.client("ssm", region_name="us-east-1")


def sent(command_id: str, instance_ids: list[str], document: str) -> dict:
    """SendCommand's answer, as AWS returns it."""
    return {
        "Command": {
            "CommandId": command_id,
            "DocumentName": document,
            "DocumentVersion": "$DEFAULT",
            "Comment": "opsgate: OS user deploy",
            "ExpiresAfter": NOW,
            "Parameters": {"UserName": ["deploy"]},
            "InstanceIds": instance_ids,
            "Targets": [],
            "RequestedDateTime": NOW,
            "Status": "Pending",
            "StatusDetails": "Pending",
            "OutputS3Region": "us-east-1",
            "OutputS3KeyPrefix": "",
            "MaxConcurrency": "50",
            "MaxErrors": "0",
            "TargetCount": len(instance_ids),
            "CompletedCount": 0,
            "ErrorCount": 0,
            "DeliveryTimedOutCount": 0,
            "ServiceRole": "",
            "NotificationConfig": {
                "NotificationArn": "",
                "NotificationEvents": [],
                "NotificationType": "",
            },
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
            "TimeoutSeconds": 3600,
        }
    }


def invocation(
    command_id: str,
    instance_id: str,
    *,
    status: str = "Success",
    out: str = "",
    err: str = "",
    document: str = os_users.CHECK_DOCUMENT,
) -> dict:
    """GetCommandInvocation's answer, as AWS returns it."""
    return {
        "CommandId": command_id,
        "InstanceId": instance_id,
        "Comment": "opsgate: OS user deploy",
        "DocumentName": document,
        "DocumentVersion": "1",
        # The document's one step (provisioning.os_user_documents.step_name).
        "PluginName": "checkOsUser"
        if document == os_users.CHECK_DOCUMENT
        else "ensureOsUser",
        "ResponseCode": 0 if status == "Success" else 1,
        "ExecutionStartDateTime": "2026-12-07T10:00:01.123Z",
        "ExecutionElapsedTime": "PT0.221S",
        "ExecutionEndDateTime": "2026-12-07T10:00:01.344Z",
        "Status": status,
        "StatusDetails": status,
        "StandardOutputContent": out,
        "StandardOutputUrl": "",
        "StandardErrorContent": err,
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
    }


def expect_get(stub, command_id, instance_id, response):
    stub.add_response(
        "get_command_invocation",
        response,
        {"CommandId": command_id, "InstanceId": instance_id},
    )


def test_parse_output_takes_exactly_one_answer_line():
    assert os_users.parse_output("x\nopsgate-os-user: exists\n") == "exists"
    assert os_users.parse_output("opsgate-os-user: created") == "created"
    assert os_users.parse_output("  opsgate-os-user:   missing  \n") == "missing"
    assert os_users.parse_output("") is None
    assert os_users.parse_output("opsgate-os-user: maybe") is None
    assert (
        os_users.parse_output("opsgate-os-user: exists\nopsgate-os-user: created")
        is None
    )


def test_the_check_document_is_sent_with_the_user_and_each_answer_is_read():
    ssm = ssm_client()
    with Stubber(ssm) as stub:
        stub.add_response(
            "send_command",
            sent(C1, ["i-1", "i-2", "i-3"], os_users.CHECK_DOCUMENT),
            {
                "DocumentName": os_users.CHECK_DOCUMENT,
                "InstanceIds": ["i-1", "i-2", "i-3"],
                "Parameters": {"UserName": ["deploy"]},
                "Comment": "opsgate: OS user deploy",
            },
        )
        expect_get(
            stub, C1, "i-1", invocation(C1, "i-1", out="opsgate-os-user: exists\n")
        )
        expect_get(
            stub, C1, "i-2", invocation(C1, "i-2", out="opsgate-os-user: missing\n")
        )
        expect_get(
            stub,
            C1,
            "i-3",
            invocation(C1, "i-3", status="Failed", err="id: permission denied\n"),
        )
        results = os_users.run(
            ssm,
            document=os_users.CHECK_DOCUMENT,
            instance_ids=["i-1", "i-2", "i-3"],
            user="deploy",
            timeout=30,
            sleep=pytest.fail,
        )
        stub.assert_no_pending_responses()
    assert {i: r.result for i, r in results.items()} == {
        "i-1": "exists",
        "i-2": "missing",
        "i-3": "failed",
    }
    assert results["i-3"].message == "the command ended Failed: id: permission denied"


def test_an_invocation_still_running_is_read_again_then_pending_at_the_timeout():
    ssm = ssm_client()
    clock = iter([0.0, 1.0, 31.0])
    naps = []
    with Stubber(ssm) as stub:
        stub.add_response(
            "send_command",
            sent(C2, ["i-1", "i-2"], os_users.ENSURE_DOCUMENT),
        )
        # Not registered yet, then in progress: read again after a pause.
        stub.add_client_error(
            "get_command_invocation",
            service_error_code="InvocationDoesNotExist",
            http_status_code=400,
        )
        expect_get(
            stub,
            C2,
            "i-2",
            invocation(
                C2,
                "i-2",
                out="opsgate-os-user: created\n",
                document=os_users.ENSURE_DOCUMENT,
            ),
        )
        expect_get(stub, C2, "i-1", invocation(C2, "i-1", status="InProgress"))
        results = os_users.run(
            ssm,
            document=os_users.ENSURE_DOCUMENT,
            instance_ids=["i-1", "i-2"],
            user="deploy",
            timeout=30,
            clock=lambda: next(clock),
            sleep=naps.append,
        )
        stub.assert_no_pending_responses()
    assert results["i-2"].result == "created"
    assert results["i-1"].result == "pending"
    assert results["i-1"].message == "no answer within 30 s"
    assert naps == [os_users.POLL_SECONDS]


def test_a_success_without_the_answer_line_is_no_answer():
    # A non-Linux instance: SSM skips the documents' Linux-only step and
    # answers Success with nothing printed.
    result = os_users.invocation_result(invocation(C0, "i-1", out=""))
    assert result.result == "failed"
    assert "its step did not run (the documents run on Linux" in result.message
    result = os_users.invocation_result(invocation(C0, "i-1", out="done\n"))
    assert result.result == "failed"
    assert "step did not run" in result.message


def test_an_answer_the_document_does_not_give_is_no_answer():
    two = "opsgate-os-user: exists\nopsgate-os-user: missing\n"
    result = os_users.invocation_result(invocation(C0, "i-1", out=two))
    assert result.result == "failed"
    assert "no single 'opsgate-os-user: exists|created|missing' line" in result.message
    # Check never creates: "created" from it is not an answer.
    created = invocation(C0, "i-1", out="opsgate-os-user: created\n")
    assert os_users.invocation_result(created).result == "failed"
    ensured = invocation(
        C0, "i-1", out="opsgate-os-user: created\n", document=os_users.ENSURE_DOCUMENT
    )
    assert os_users.invocation_result(ensured).result == "created"
    assert (
        os_users.parse_output("opsgate-os-user: missing", os_users.ENSURE_DOCUMENT)
        is None
    )


def test_a_refused_send_command_fails_every_instance_with_awss_message():
    ssm = ssm_client()
    with Stubber(ssm) as stub:
        stub.add_client_error(
            "send_command",
            service_error_code="InvalidDocument",
            service_message="Document opsgate-CheckOsUser does not exist.",
            http_status_code=400,
        )
        results = os_users.run(
            ssm,
            document=os_users.CHECK_DOCUMENT,
            instance_ids=["i-1"],
            user="deploy",
            timeout=30,
        )
    assert results["i-1"].result == "failed"
    assert results["i-1"].message == (
        "ssm:SendCommand failed: InvalidDocument: Document opsgate-CheckOsUser "
        "does not exist."
    )


def test_more_than_fifty_instances_go_in_batches():
    ids = [f"i-{n:03d}" for n in range(60)]
    ssm = ssm_client()
    with Stubber(ssm) as stub:
        stub.add_response("send_command", sent(CA, ids[:50], os_users.CHECK_DOCUMENT))
        stub.add_response("send_command", sent(CB, ids[50:], os_users.CHECK_DOCUMENT))
        assert os_users.send(
            ssm, document=os_users.CHECK_DOCUMENT, instance_ids=ids, user="deploy"
        ) == [CA, CB]


def info(instance_id: str, ping: str) -> dict:
    """One DescribeInstanceInformation entry, as AWS returns it."""
    return {
        "InstanceId": instance_id,
        "PingStatus": ping,
        "LastPingDateTime": NOW,
        "AgentVersion": "3.3.1142.0",
        "IsLatestVersion": False,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "PlatformVersion": "2023",
        "ResourceType": "EC2Instance",
        "IPAddress": "10.0.1.23",
        "ComputerName": "ip-10-0-1-23.ec2.internal",
        "AssociationStatus": "Success",
        "LastAssociationExecutionDate": NOW,
        "LastSuccessfulAssociationExecutionDate": NOW,
        "AssociationOverview": {
            "DetailedStatus": "Success",
            "InstanceAssociationStatusAggregatedCount": {"Success": 1},
        },
        "SourceId": instance_id,
        "SourceType": "AWS::EC2::Instance",
    }


def test_ping_status_reads_every_page_of_instance_information():
    ssm = ssm_client()
    with Stubber(ssm) as stub:
        wanted = {"Filters": [{"Key": "InstanceIds", "Values": ["i-1", "i-2", "i-3"]}]}
        stub.add_response(
            "describe_instance_information",
            {"InstanceInformationList": [info("i-1", "Online")], "NextToken": "t"},
            wanted,
        )
        stub.add_response(
            "describe_instance_information",
            {"InstanceInformationList": [info("i-2", "ConnectionLost")]},
            {**wanted, "NextToken": "t"},
        )
        found = readiness.ping_status(ssm, ["i-1", "i-2", "i-3"])
        stub.assert_no_pending_responses()
    assert found == {"i-1": "Online", "i-2": "ConnectionLost"}


def unsaved_grant() -> AccessRequest:
    """A grant as plain objects (no database): what simulate_check reads."""
    account = AwsAccount(account_id="123456789012", name="default")
    project = Project(name="payments", account=account)
    role = OperationRole(
        project=project,
        account=account,
        os_user="deploy",
        role_name="payments-deploy",
        arn=ROLE_ARN,
    )
    carol = IamUser(name="carol", account=account, arn=USER_ARN)
    return AccessRequest(requester=carol, role=role)


def evaluation(action: str, resource: str, decision: str) -> dict:
    """One SimulatePrincipalPolicy result, as AWS returns it."""
    return {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": decision,
        "MatchedStatements": [
            {
                "SourcePolicyId": "opsgate-AssumeRole",
                "SourcePolicyType": "IAM Policy",
                "StartPosition": {"Line": 1, "Column": 41},
                "EndPosition": {"Line": 1, "Column": 118},
            }
        ]
        if decision == "allowed"
        else [],
        "MissingContextValues": [],
        "EvalDecisionDetails": {},
    }


INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
ROWS = [{"instance_id": "i-1", "region": "us-east-1", "state": "ready"}]


@pytest.fixture
def stubbed_iam(monkeypatch):
    iam = boto3.client("iam", region_name="us-east-1")
    monkeypatch.setattr(aws, "client", lambda service, account=None, **kw: iam)
    with Stubber(iam) as stub:
        yield stub


def mfa_context() -> list[dict]:
    return [
        {
            "ContextKeyName": "aws:MultiFactorAuthPresent",
            "ContextKeyValues": ["true"],
            "ContextKeyType": "boolean",
        }
    ]


def test_the_simulator_allowing_both_ways_in_passes(stubbed_iam):
    stubbed_iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [evaluation("sts:AssumeRole", ROLE_ARN, "allowed")],
            "IsTruncated": False,
        },
        {
            "PolicySourceArn": USER_ARN,
            "ActionNames": ["sts:AssumeRole"],
            "ResourceArns": [ROLE_ARN],
            "ContextEntries": mfa_context(),
        },
    )
    stubbed_iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                evaluation("ssm:StartSession", INSTANCE_ARN, "allowed")
            ],
            "IsTruncated": False,
        },
        {
            "PolicySourceArn": ROLE_ARN,
            "ActionNames": ["ssm:StartSession"],
            "ResourceArns": [INSTANCE_ARN],
            "ContextEntries": [
                {
                    "ContextKeyName": key,
                    "ContextKeyValues": ["payments"],
                    "ContextKeyType": "string",
                }
                for key in ("aws:ResourceTag/Project", "aws:PrincipalTag/Project")
            ],
        },
    )
    check = readiness.simulate_check(unsaved_grant(), ROWS)
    stubbed_iam.assert_no_pending_responses()
    assert check.ok, check.message


def test_the_simulator_denying_says_which_way_in_is_closed(stubbed_iam):
    stubbed_iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                evaluation("sts:AssumeRole", ROLE_ARN, "explicitDeny")
            ],
            "IsTruncated": False,
        },
    )
    stubbed_iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                evaluation("ssm:StartSession", INSTANCE_ARN, "implicitDeny")
            ],
            "IsTruncated": False,
        },
    )
    check = readiness.simulate_check(unsaved_grant(), ROWS)
    assert not check.ok and check.propagating
    assert check.message == (
        "IAM's policy simulator denies: sts:AssumeRole on payments-deploy "
        "(explicitDeny); ssm:StartSession on i-1 (implicitDeny)."
    )


def test_a_simulator_without_permission_is_not_ready_with_awss_message(stubbed_iam):
    stubbed_iam.add_client_error(
        "simulate_principal_policy",
        service_error_code="AccessDenied",
        service_message="not authorized to perform: iam:SimulatePrincipalPolicy",
        http_status_code=403,
    )
    check = readiness.simulate_check(unsaved_grant(), ROWS)
    assert not check.ok
    assert check.message.startswith(
        "Could not check: iam:SimulatePrincipalPolicy failed: AccessDenied"
    )

"""Revocation ends live access: the trust drops the person, an inline deny
matches their sessions issued before the revoke until they cannot exist any
more, and their open SSM sessions are terminated."""

from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber
from django.utils import timezone

from accounts_app.models import AccessRequest, OperationRole
from accounts_app.services import access_requests, lifecycle
from provisioning import aws, policies, ssm, sync
from tests.conftest import ACCOUNT_ID
from tests.helpers import grant

pytestmark = pytest.mark.django_db

DENY = "opsgate-RevokedSessions"


def owner(name, role="payments-deploy"):
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{name}"


def trusted(iam, role="payments-deploy"):
    statement = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"][
        "Statement"
    ][0]
    arns = statement["Principal"]["AWS"]
    return sorted([arns] if isinstance(arns, str) else arns)


def inline_names(iam, role="payments-deploy"):
    return iam.list_role_policies(RoleName=role)["PolicyNames"]


@pytest.fixture
def two_grants(aws_env, carol, dave, bob, deploy_role):
    g_carol = grant(carol, deploy_role, bob)
    g_dave = grant(dave, deploy_role, bob, hours=24)
    sync.role_sync(role_id=deploy_role.pk)
    return g_carol, g_dave


def test_revoke_removes_the_principal_writes_the_deny_and_ends_ssm_sessions(
    two_grants, iam, bob, ssm_sessions
):
    g_carol, _ = two_grants
    ssm_sessions.sessions = {owner("carol"): ["carol-0a1", "carol-0b2"]}
    ssm_sessions.sessions[owner("dave")] = ["dave-0c3"]
    assert inline_names(iam) == []

    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    sync.role_sync(role_id=g_carol.role_id)

    assert trusted(iam) == [f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/dave"]
    g_carol.refresh_from_db()
    role = OperationRole.objects.get(pk=g_carol.role_id)
    assert role.unique_id.startswith("AROA")
    deny = iam.get_role_policy(RoleName="payments-deploy", PolicyName=DENY)
    assert deny["PolicyDocument"] == policies.revoked_sessions_policy(
        role_id=role.unique_id, revoked={"carol": g_carol.deny_cutoff}
    )
    condition = deny["PolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringLike"] == {"aws:userid": f"{role.unique_id}:carol"}
    assert g_carol.deny_cutoff >= g_carol.trust_removed_at
    assert role.revoked_sessions_until == g_carol.deny_cutoff + timedelta(seconds=3600)
    assert ssm_sessions.calls == [
        (
            "DescribeSessions",
            {
                "State": "Active",
                "Filters": [{"key": "Owner", "value": owner("carol")}],
            },
        ),
        ("TerminateSession", {"SessionId": "carol-0a1"}),
        ("TerminateSession", {"SessionId": "carol-0b2"}),
    ]
    assert ssm_sessions.sessions[owner("dave")] == ["dave-0c3"]

    # A second sync changes nothing and ends nothing again.
    ssm_sessions.calls.clear()
    role.bump()
    sync.role_sync(role_id=role.pk)
    assert ssm_sessions.calls == []
    assert (
        iam.get_role_policy(RoleName="payments-deploy", PolicyName=DENY)[
            "PolicyDocument"
        ]
        == deny["PolicyDocument"]
    )


def test_the_deny_goes_once_max_session_duration_has_passed(two_grants, iam, bob):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    sync.role_sync(role_id=g_carol.role_id)
    role = OperationRole.objects.get(pk=g_carol.role_id)
    assert inline_names(iam) == [DENY]

    early = role.revoked_sessions_until - timedelta(seconds=1)
    assert lifecycle.revoked_sessions_shrink(now=early) == 0
    # An hour later (the default MaxSessionDuration) no session of carol's
    # issued before the revoke can still be valid.
    hour_ago = timezone.now() - timedelta(seconds=3601)
    AccessRequest.objects.filter(pk=g_carol.pk).update(deny_cutoff=hour_ago)
    OperationRole.objects.filter(pk=role.pk).update(revoked_sessions_until=hour_ago)
    assert lifecycle.revoked_sessions_shrink() == 1
    sync.role_sync(role_id=role.pk)
    assert inline_names(iam) == []
    role.refresh_from_db()
    assert role.revoked_sessions_until is None
    assert lifecycle.revoked_sessions_shrink() == 0


def test_expiry_ends_sessions_like_a_revoke(two_grants, iam, ssm_sessions):
    g_carol, _ = two_grants
    ssm_sessions.sessions = {owner("carol"): ["carol-0a1"]}
    lifecycle.access_requests_expire(now=g_carol.expires_at + timedelta(seconds=1))
    sync.role_sync(role_id=g_carol.role_id)
    assert trusted(iam) == [f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/dave"]
    assert inline_names(iam) == [DENY]
    assert ssm_sessions.sessions[owner("carol")] == []


def test_revoking_the_last_grant_deletes_the_role_and_ends_sessions(
    aws_env, carol, bob, deploy_role, iam, ssm_sessions
):
    g = grant(carol, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    ssm_sessions.sessions = {owner("carol"): ["carol-0a1"]}
    access_requests.access_request_revoke(
        access_request=g, actor=carol.user
    )  # "I'm done"
    sync.role_sync(role_id=deploy_role.pk)
    assert [
        r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]
    ] == []
    assert ssm_sessions.sessions[owner("carol")] == []
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert not role.exists_in_aws and role.revoked_sessions_until is None


def test_an_extension_does_not_revoke_the_persons_sessions(
    two_grants, iam, bob, carol, ssm_sessions
):
    g_carol, _ = two_grants
    ssm_sessions.sessions = {owner("carol"): ["carol-0a1"]}
    ext = access_requests.access_request_create(
        requester=carol,
        role=g_carol.role,
        reason="more",
        duration_hours=8,
        actor=carol.user,
    )
    access_requests.access_request_approve(access_request=ext, approver=bob.user)
    sync.role_sync(role_id=g_carol.role_id)
    assert f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/carol" in trusted(iam)
    assert inline_names(iam) == []
    assert ssm_sessions.calls == []


def test_terminate_sessions_pages_through_describe_sessions_at_the_aws_edge():
    client = boto3.client("ssm", region_name="us-east-1")
    who = owner("carol")
    filters = [{"key": "Owner", "value": who}]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_sessions",
            {"Sessions": [{"SessionId": "carol-1"}], "NextToken": "t2"},
            {"State": "Active", "Filters": filters},
        )
        stub.add_response(
            "describe_sessions",
            {"Sessions": [{"SessionId": "carol-2"}]},
            {"State": "Active", "Filters": filters, "NextToken": "t2"},
        )
        stub.add_response(
            "terminate_session", {"SessionId": "carol-1"}, {"SessionId": "carol-1"}
        )
        # Ended by itself meanwhile: not an error.
        stub.add_client_error(
            "terminate_session",
            service_error_code="DoesNotExistException",
            expected_params={"SessionId": "carol-2"},
        )
        assert ssm.terminate_sessions(client, owner=who) == ["carol-1", "carol-2"]
        stub.assert_no_pending_responses()


def test_an_ssm_access_denied_is_a_permanent_error_on_the_role():
    from provisioning.aws import PermanentError

    client = boto3.client("ssm", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("describe_sessions", service_error_code="AccessDenied")
        with pytest.raises(PermanentError, match="ssm:DescribeSessions"):
            ssm.terminate_sessions(client, owner=owner("carol"))


def test_without_ssm_termination_the_deny_is_still_written(
    two_grants, iam, bob, ssm_sessions, settings
):
    settings.OPSGATE = {**settings.OPSGATE, "TERMINATE_SSM_SESSIONS": False}
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    sync.role_sync(role_id=g_carol.role_id)
    assert ssm_sessions.calls == []
    assert inline_names(iam) == [DENY]
    g_carol.refresh_from_db()
    assert g_carol.trust_removed_at is not None


def test_a_role_holding_a_session_deny_is_deleted_when_its_last_grant_ends(
    two_grants, iam, bob
):
    g_carol, g_dave = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    sync.role_sync(role_id=g_carol.role_id)
    assert inline_names(iam) == [DENY]
    access_requests.access_request_revoke(access_request=g_dave, actor=bob.user)
    with aws.observe_calls() as calls:
        sync.role_sync(role_id=g_dave.role_id)
    assert calls.index("iam:DeleteRolePolicy") < calls.index("iam:DeleteRole")
    assert [
        r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]
    ] == []

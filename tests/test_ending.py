"""Ending access fails closed (DESIGN §4.1): the revoked-sessions deny, then
the trust, then SSM, each recorded on its own and never undone by a later
step's failure; the cutoff covers IAM propagation; a re-grant keeps the deny
of sessions issued before the ending; the deny stays within its quota; a
removed cross-account user is ended like a grant."""

import contextlib
import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import AccessRequest, OperationRole
from accounts_app.services import access_requests, roles
from provisioning import aws, policies, sync
from provisioning.aws import AwsError, PermanentError, RetryLater
from tests import faults
from tests.conftest import ACCOUNT_ID, _person
from tests.helpers import grant

pytestmark = pytest.mark.django_db

DENY = "opsgate-RevokedSessions"
ROLE = "payments-deploy"
OTHER = "arn:aws:iam::210987654321:user/ops/xavier"
KEPT = "arn:aws:iam::210987654321:user/ops/yuki"


def owner(name):
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{ROLE}/{name}"


def user_arn(name):
    return f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/{name}"


def trust_of(iam):
    return iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]


def trusted(iam):
    arns = trust_of(iam)["Statement"][0]["Principal"]["AWS"]
    return sorted([arns] if isinstance(arns, str) else arns)


def deny_of(iam):
    return iam.get_role_policy(RoleName=ROLE, PolicyName=DENY)["PolicyDocument"]


def denied(iam):
    """{session name pattern: cutoff} of the role's deny."""
    return {
        s["Condition"]["StringLike"]["aws:userid"].split(":", 1)[1]: s["Condition"][
            "DateLessThan"
        ]["aws:TokenIssueTime"]
        for s in deny_of(iam)["Statement"]
    }


def role_roles(iam):
    return [r["RoleName"] for r in iam.list_roles(PathPrefix="/opsgate/")["Roles"]]


@contextlib.contextmanager
def ssm_fails(ssm_sessions, code="AccessDeniedException"):
    """SSM answers DescribeSessions with an error inside the block."""

    def describe_sessions(**params):
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected"}}, "DescribeSessions"
        )

    ssm_sessions.describe_sessions = describe_sessions
    try:
        yield
    finally:
        del ssm_sessions.describe_sessions


@pytest.fixture
def two_grants(aws_env, carol, dave, bob, deploy_role):
    g_carol = grant(carol, deploy_role, bob)
    g_dave = grant(dave, deploy_role, bob, hours=24)
    sync.role_sync(role_id=deploy_role.pk)
    return g_carol, g_dave


# --- 1. An SSM failure undoes nothing ------------------------------------------


def test_an_ssm_failure_keeps_the_deny_and_the_trust_and_a_later_sync_ends_the_sessions(  # noqa: E501
    two_grants, iam, bob, ssm_sessions
):
    g_carol, _ = two_grants
    ssm_sessions.sessions = {owner("carol"): ["carol-1"]}
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)

    with ssm_fails(ssm_sessions), pytest.raises(PermanentError, match="ssm:Desc"):
        sync.role_sync(role_id=g_carol.role_id)

    # Steps 1 and 2 are in AWS and recorded; step 3 is pending.
    g_carol.refresh_from_db()
    assert trusted(iam) == [user_arn("dave")]
    assert list(denied(iam)) == ["carol"]
    assert g_carol.deny_written_at and g_carol.trust_removed_at
    assert g_carol.sessions_ended_at is None
    role = OperationRole.objects.get(pk=g_carol.role_id)
    assert role.sync_status == "error" and "DescribeSessions" in role.last_error
    assert ssm_sessions.sessions[owner("carol")] == ["carol-1"]

    # SSM answers again: the retry ends the sessions and closes the grant.
    role.bump()
    sync.role_sync(role_id=role.pk)
    g_carol.refresh_from_db()
    assert ssm_sessions.sessions[owner("carol")] == []
    assert g_carol.sessions_ended_at is not None
    assert OperationRole.objects.get(pk=role.pk).sync_status == "in_sync"
    assert list(denied(iam)) == ["carol"]


def test_a_failed_trust_write_keeps_the_deny_written_before_it(
    two_grants, iam, bob, account
):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    with faults.injected(account) as plan:
        plan.fail("UpdateAssumeRolePolicy", "AccessDenied", status=403)
        with pytest.raises(PermanentError):
            sync.role_sync(role_id=g_carol.role_id)
    g_carol.refresh_from_db()
    assert list(denied(iam)) == ["carol"]
    assert g_carol.deny_written_at is not None
    assert g_carol.trust_removed_at is None
    assert user_arn("carol") in trusted(iam)
    # Until the trust is rewritten, the cutoff keeps moving with each try.
    assert g_carol.deny_cutoff > timezone.now()


# --- 2. The last holder: closed before the role is deleted ---------------------


def test_a_failed_delete_of_the_last_holders_role_leaves_it_closed(
    aws_env, carol, bob, deploy_role, iam, ssm_sessions, account
):
    g = grant(carol, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    ssm_sessions.sessions = {owner("carol"): ["carol-1"]}
    access_requests.access_request_revoke(access_request=g, actor=bob.user)

    with faults.injected(account) as plan:
        plan.fail("DeleteRole", "DeleteConflict", status=409)
        with aws.observe_calls() as calls, pytest.raises(AwsError):
            sync.role_sync(role_id=deploy_role.pk)

    # Deny, then the trust of nobody, then (SSM and) the deletion.
    assert calls.index("iam:PutRolePolicy") < calls.index("iam:UpdateAssumeRolePolicy")
    assert calls.index("iam:UpdateAssumeRolePolicy") < calls.index("iam:DeleteRole")
    assert calls.index("iam:DetachRolePolicy") < calls.index("iam:DeleteRolePolicy")
    assert role_roles(iam) == [ROLE]
    assert trust_of(iam) == policies.trust_nobody_policy()
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    assert ssm_sessions.sessions[owner("carol")] == []
    g.refresh_from_db()
    assert g.deny_written_at and g.trust_removed_at and g.sessions_ended_at

    deploy_role.bump()
    sync.role_sync(role_id=deploy_role.pk)
    assert role_roles(iam) == []
    role = OperationRole.objects.get(pk=deploy_role.pk)
    assert not role.exists_in_aws and role.sync_status == "in_sync"


def test_a_failed_ssm_step_does_not_keep_the_last_holders_role(
    aws_env, carol, bob, deploy_role, iam, ssm_sessions
):
    g = grant(carol, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    access_requests.access_request_revoke(access_request=g, actor=bob.user)
    with ssm_fails(ssm_sessions), pytest.raises(PermanentError):
        sync.role_sync(role_id=deploy_role.pk)
    assert role_roles(iam) == []
    g.refresh_from_db()
    assert g.trust_removed_at and g.sessions_ended_at is None


# --- 3. The cutoff covers IAM propagation ------------------------------------


def test_the_cutoff_covers_propagation_and_ssm_is_ended_again_after_it(
    two_grants, iam, bob, ssm_sessions, settings
):
    settings.OPSGATE = {**settings.OPSGATE, "IAM_PROPAGATION_SECONDS": 60}
    g_carol, _ = two_grants
    ssm_sessions.sessions = {owner("carol"): ["carol-1"]}
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)

    with pytest.raises(RetryLater, match="once more") as waits:
        sync.role_sync(role_id=g_carol.role_id)
    assert 50 < waits.value.countdown <= 60

    g_carol.refresh_from_db()
    assert g_carol.deny_cutoff >= g_carol.trust_removed_at + timedelta(seconds=60)
    assert denied(iam) == {"carol": policies.iso8601(g_carol.deny_cutoff)}
    assert ssm_sessions.sessions[owner("carol")] == []
    assert g_carol.sessions_ended_at is None
    role = OperationRole.objects.get(pk=g_carol.role_id)
    assert role.sync_status == "pending"

    # A shell started while IAM still honoured the old trust; the retry after
    # the margin ends it and closes the grant.
    ssm_sessions.sessions[owner("carol")] = ["carol-gap"]
    AccessRequest.objects.filter(pk=g_carol.pk).update(
        trust_removed_at=F("trust_removed_at") - timedelta(seconds=61)
    )
    sync.role_sync(role_id=role.pk)
    assert ssm_sessions.sessions[owner("carol")] == []
    g_carol.refresh_from_db()
    assert g_carol.sessions_ended_at is not None
    assert OperationRole.objects.get(pk=role.pk).sync_status == "in_sync"


# --- 4. A re-grant keeps the deny of the sessions before the ending ------------


def test_a_regrant_keeps_denying_the_sessions_issued_before_the_revoke(
    two_grants, iam, bob, carol
):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    sync.role_sync(role_id=g_carol.role_id)
    before = denied(iam)
    assert list(before) == ["carol"]

    again = grant(carol, g_carol.role, bob)
    sync.role_sync(role_id=again.role_id)
    assert user_arn("carol") in trusted(iam)
    assert denied(iam) == before


def test_a_revoke_and_regrant_before_any_sync_still_denies_the_old_sessions(
    two_grants, iam, bob, carol
):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    grant(carol, g_carol.role, bob)
    sync.role_sync(role_id=g_carol.role_id)
    assert user_arn("carol") in trusted(iam)
    assert list(denied(iam)) == ["carol"]


# --- 5. The deny stays within the role's inline-policy quota -----------------


def _refuse_oversized_inline_policies(request, event_name, **kwargs):
    """IAM refuses inline policies of a role over 10,240 characters (moto
    does not)."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    params = parse_qs(body or "")
    if params.get("Action") != ["PutRolePolicy"]:
        return None
    document = json.loads(params["PolicyDocument"][0])
    if len(policies.minified(document)) <= policies.ROLE_INLINE_POLICY_QUOTA:
        return None
    xml = faults._XML.format(
        type="Sender",
        code="LimitExceeded",
        message="Maximum policy size of 10240 bytes exceeded for role",
    )
    return AWSResponse(
        request.url, 409, {"Content-Type": "text/xml"}, faults._Raw(xml.encode())
    )


def test_sixty_endings_within_one_session_duration_fall_back_to_the_coarse_deny(
    two_grants, iam, bob, account
):
    g_carol, _ = two_grants
    role = OperationRole.objects.get(pk=g_carol.role_id)
    for index in range(60):
        person = _person(account, f"ops-person-{index:02d}")
        ended = grant(person, role, bob)
        access_requests.access_request_revoke(access_request=ended, actor=bob.user)
    client = aws.client("iam", account)
    client.meta.events.register("before-send.iam", _refuse_oversized_inline_policies)
    try:
        sync.role_sync(role_id=role.pk)
    finally:
        client.meta.events.unregister(
            "before-send.iam", _refuse_oversized_inline_policies
        )
    role.refresh_from_db()
    assert role.sync_status == "in_sync"
    latest = max(
        AccessRequest.objects.filter(role=role, deny_cutoff__isnull=False).values_list(
            "deny_cutoff", flat=True
        )
    )
    assert deny_of(iam) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllSessionsBefore",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"aws:userid": f"{role.unique_id}:*"},
                    "DateLessThan": {"aws:TokenIssueTime": policies.iso8601(latest)},
                },
            }
        ],
    }
    assert trusted(iam) == [user_arn("carol"), user_arn("dave")]


# --- 9. A removed cross-account user is ended like a grant ---------------------


def test_removing_a_cross_account_user_denies_and_ends_their_sessions(
    aws_env, dave, bob, alice, deploy_role, iam, ssm_sessions
):
    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[OTHER, KEPT], actor=alice.user
    )
    grant(dave, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    assert OTHER in trusted(iam)
    ssm_sessions.sessions = {owner("xavier"): ["xavier-1"], owner("yuki"): ["y-1"]}

    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[KEPT], actor=alice.user
    )
    sync.role_sync(role_id=deploy_role.pk)

    assert trusted(iam) == sorted([KEPT, user_arn("dave")])
    assert list(denied(iam)) == ["xavier"]
    assert ssm_sessions.sessions == {owner("xavier"): [], owner("yuki"): ["y-1"]}
    role = OperationRole.objects.get(pk=deploy_role.pk)
    [ending] = role.ended_principals
    assert ending["arn"] == OTHER
    assert ending["deny"] and ending["trust"] and ending["sessions"]
    assert role.sync_status == "in_sync"


def test_a_failed_trust_write_leaves_the_removed_user_ending_until_a_retry(
    aws_env, dave, bob, alice, deploy_role, iam, account
):
    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[OTHER], actor=alice.user
    )
    grant(dave, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[], actor=alice.user
    )
    with faults.injected(account) as plan:
        plan.fail("UpdateAssumeRolePolicy", "AccessDenied", status=403)
        with pytest.raises(PermanentError):
            sync.role_sync(role_id=deploy_role.pk)
    [ending] = OperationRole.objects.get(pk=deploy_role.pk).ended_principals
    assert ending["deny"] and not ending["trust"]
    assert list(denied(iam)) == ["xavier"]
    deploy_role.bump()
    sync.role_sync(role_id=deploy_role.pk)
    assert OTHER not in trusted(iam)
    [ending] = OperationRole.objects.get(pk=deploy_role.pk).ended_principals
    assert ending["trust"] and ending["sessions"]


# --- The dashboard shows what AWS may still honour -----------------------------


def test_the_dashboard_shows_in_red_a_grant_ended_with_a_step_pending_until_closed(
    two_grants, bob, alice, login, ssm_sessions
):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    with ssm_fails(ssm_sessions), pytest.raises(PermanentError):
        sync.role_sync(role_id=g_carol.role_id)

    page = login(alice).get(reverse("dashboard"))
    assert page.context["totals"]["ending"] == 1
    [row] = page.context["ending"]
    assert (row["who"], row["role"].pk) == ("carol", g_carol.role_id)
    assert row["pending"] == ["SSM sessions"]
    text = page.content.decode()
    assert '<tr class="ending-open" data-ending="open">' in text
    assert '<span class="badge badge-error">SSM sessions</span>' in text

    role = OperationRole.objects.get(pk=g_carol.role_id)
    role.bump()
    sync.role_sync(role_id=role.pk)
    page = login(alice).get(reverse("dashboard"))
    assert page.context["totals"]["ending"] == 0
    assert "Every ended grant is closed in AWS." in page.content.decode()


def test_the_dashboard_shows_a_revoke_the_worker_has_not_applied_yet(
    two_grants, bob, alice, login
):
    g_carol, _ = two_grants
    access_requests.access_request_revoke(access_request=g_carol, actor=bob.user)
    [row] = login(alice).get(reverse("dashboard")).context["ending"]
    assert row["pending"] == ["session deny", "trust rewrite", "SSM sessions"]


def test_the_dashboard_shows_a_removed_cross_account_user_until_closed(
    aws_env, dave, bob, alice, deploy_role, account, login
):
    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[OTHER], actor=alice.user
    )
    grant(dave, deploy_role, bob)
    sync.role_sync(role_id=deploy_role.pk)
    roles.role_principals_set(
        role=deploy_role, extra_principal_arns=[], actor=alice.user
    )
    with faults.injected(account) as plan:
        plan.fail("UpdateAssumeRolePolicy", "AccessDenied", status=403)
        with pytest.raises(PermanentError):
            sync.role_sync(role_id=deploy_role.pk)
    [row] = login(alice).get(reverse("dashboard")).context["ending"]
    assert row["who"] == OTHER
    assert row["pending"] == ["trust rewrite", "SSM sessions"]


def test_a_waiting_ending_step_brings_the_task_back_when_the_margin_has_passed(
    deploy_role,
):
    from types import SimpleNamespace

    from accounts_app.models import OperationRole
    from provisioning import tasks

    class Task:
        request = SimpleNamespace(retries=0, is_eager=False)

        def retry(self, *, exc, countdown, max_retries):
            self.countdown = countdown
            return RuntimeError("retried")

    def waits(**kwargs):
        raise sync.StepWaits("SSM once more", countdown=42.0)

    OperationRole.objects.get(pk=deploy_role.pk).bump()  # behind: work to do
    task = Task()
    with pytest.raises(RuntimeError, match="retried"):
        tasks._run(task, OperationRole, waits, deploy_role.pk)
    assert task.countdown == 42.0

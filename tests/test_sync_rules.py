"""The worker's small rules, each pinned on its own without a moto round trip:
how a failure is recorded (retry or stop), which "invalid principal" is IAM
still propagating a new user and which is permanent, the trust quota read
from the account summary, and the names and texts the sync writes to AWS.
The end-to-end paths are in test_import_and_sync, test_aws_faults,
test_revocation and test_recovery. Measured with scripts/mutation.sh (sync)."""

from datetime import timedelta

import botocore.exceptions
import pytest
from django.db import transaction
from django.utils import timezone

from accounts_app.models import AwsAccount, IamUser, OperationRole
from provisioning import sync
from provisioning.aws import DependencyMissing, PermanentError, RetryLater
from provisioning.sync import accounts, outcomes, roles
from tests.helpers import grant

INVALID = "iam:CreateRole failed: MalformedPolicyDocument: Invalid principal in policy"


def _malformed(cls=PermanentError, message=INVALID, code="MalformedPolicyDocument"):
    return cls(message, action="iam:CreateRole", code=code)


def _user(name, age_seconds):
    created = (
        None if age_seconds is None else timezone.now() - timedelta(seconds=age_seconds)
    )
    return IamUser(name=name, created_in_aws_at=created)


# --- invalid principal: propagation or permanent ------------------------------


def test_invalid_principal_just_after_create_user_is_retried_naming_the_new_users(
    settings,
):
    settings.OPSGATE = {**settings.OPSGATE, "PRINCIPAL_PROPAGATION_SECONDS": 120}
    users = [_user("zed", 10), _user("amy", 119), _user("old", 121), _user("x", None)]
    result = roles._propagation_or_permanent(_malformed(), users)
    assert type(result) is RetryLater
    assert result.message.startswith(INVALID)
    assert "amy, zed;" in result.message
    assert "old" not in result.message and " x" not in result.message
    assert (result.action, result.code) == ("iam:CreateRole", "MalformedPolicyDocument")


def test_invalid_principal_long_after_create_user_is_permanent_naming_everyone(
    settings,
):
    settings.OPSGATE = {**settings.OPSGATE, "PRINCIPAL_PROPAGATION_SECONDS": 120}
    users = [_user("zed", 121), _user("amy", 3600), _user("never", None)]
    result = roles._propagation_or_permanent(_malformed(RetryLater), users)
    assert type(result) is PermanentError
    assert result.message.startswith(INVALID + ". ")
    assert "users: amy, never, zed;" in result.message
    assert (result.action, result.code) == ("iam:CreateRole", "MalformedPolicyDocument")
    none = roles._propagation_or_permanent(_malformed(), [])
    assert "users: none;" in none.message


@pytest.mark.parametrize(
    "exc",
    [
        _malformed(code="LimitExceeded"),
        _malformed(message="iam:CreateRole failed: MalformedPolicyDocument: bad"),
    ],
)
def test_other_failures_are_passed_on_unchanged(exc):
    assert roles._propagation_or_permanent(exc, [_user("amy", 1)]) is exc


def test_the_principal_word_is_found_whatever_its_case():
    exc = _malformed(message="MalformedPolicyDocument: PRINCIPAL unknown")
    assert type(roles._propagation_or_permanent(exc, [_user("a", 1)])) is RetryLater


@pytest.mark.parametrize(
    "exc",
    [
        _malformed(RetryLater),
        _malformed(code="LimitExceeded"),
        _malformed(message="iam:CreateRole failed: MalformedPolicyDocument: bad"),
    ],
)
def test_only_a_permanent_invalid_principal_looks_for_missing_users(exc):
    # Nothing is asked of AWS (the users have no account to build a client for).
    assert roles._principals_missing_or(exc, OperationRole(), [_user("a", 1)]) is exc


# --- recording outcomes -------------------------------------------------------


@pytest.mark.django_db
def test_a_permanent_error_is_recorded_as_is_and_stops(deploy_role):
    outcomes._record_error(OperationRole, deploy_role.pk, PermanentError("bad " * 600))
    stored = OperationRole.objects.get(pk=deploy_role.pk)
    assert stored.error_is_permanent is True
    assert stored.last_error == ("bad " * 600)[:2000]


@pytest.mark.django_db
def test_a_transient_error_is_recorded_as_retrying(deploy_role):
    OperationRole.objects.filter(pk=deploy_role.pk).update(error_is_permanent=True)
    outcomes._record_error(OperationRole, deploy_role.pk, RetryLater("throttled"))
    stored = OperationRole.objects.get(pk=deploy_role.pk)
    assert stored.error_is_permanent is False
    assert stored.last_error == "Retrying: throttled"


@pytest.mark.django_db
def test_a_success_clears_the_error_and_never_lowers_the_applied_version(deploy_role):
    OperationRole.objects.filter(pk=deploy_role.pk).update(
        applied_version=5, last_error="old", error_is_permanent=True
    )
    role = OperationRole.objects.get(pk=deploy_role.pk)
    before = timezone.now()
    outcomes._record_success(role, 3, exists_in_aws=True)
    stored = OperationRole.objects.get(pk=deploy_role.pk)
    assert stored.applied_version == 5
    assert (stored.last_error, stored.error_is_permanent) == ("", False)
    assert stored.exists_in_aws is True
    assert stored.last_synced_at >= before
    outcomes._record_success(stored, 7)
    assert OperationRole.objects.get(pk=deploy_role.pk).applied_version == 7


# --- the trust quota from GetAccountSummary -----------------------------------


class _Summary:
    def __init__(self, summary=None, fail=False):
        self.summary, self.fail = summary, fail

    def get_account_summary(self):
        if self.fail:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")
        return {"SummaryMap": self.summary}


def test_the_trust_quota_is_read_from_the_account_summary():
    account = AwsAccount(trust_policy_quota=2048)
    client = _Summary({"AssumeRolePolicySizeQuota": 4096, "Users": 3})
    assert sync.read_trust_policy_quota(client, account) == 4096


@pytest.mark.parametrize(
    "client",
    [
        _Summary(fail=True),
        _Summary({"Users": 3}),
        _Summary({"AssumeRolePolicySizeQuota": 0}),
    ],
)
def test_the_stored_quota_is_kept_when_aws_does_not_say(client):
    account = AwsAccount(trust_policy_quota=2048)
    assert sync.read_trust_policy_quota(client, account) == 2048


# --- what the sync writes -----------------------------------------------------


def test_names_and_texts_written_to_aws(settings):
    settings.OPSGATE = {**settings.OPSGATE, "POLICY_PREFIX": "og-"}
    assert sync.revoked_sessions_policy_name() == "og-RevokedSessions"
    role = OperationRole(os_user="deploy")
    assert sync.role_description(role) == "opsgate operation role, run as deploy"


# --- a role found missing ---------------------------------------------------------


def _objects_missing_at(role):
    return AwsAccount.objects.get(pk=role.account_id).objects_missing_at


@pytest.mark.django_db
def test_a_role_opsgate_made_that_must_be_created_again_is_noted_and_reconciled(
    deploy_role,
):
    OperationRole.objects.filter(pk=deploy_role.pk).update(exists_in_aws=True)
    role = OperationRole.objects.get(pk=deploy_role.pk)
    roles._role_missing_note(role, RetryLater("x", action="iam:CreateRole"))
    assert OperationRole.objects.get(pk=role.pk).missing_since is not None
    assert _objects_missing_at(role) is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("exists", "action"),
    [(False, "iam:CreateRole"), (True, "iam:UpdateAssumeRolePolicy")],
)
def test_a_role_never_made_or_another_failure_is_not_missing(
    deploy_role, exists, action
):
    OperationRole.objects.filter(pk=deploy_role.pk).update(exists_in_aws=exists)
    role = OperationRole.objects.get(pk=deploy_role.pk)
    roles._role_missing_note(role, RetryLater("x", action=action))
    assert OperationRole.objects.get(pk=role.pk).missing_since is None
    assert _objects_missing_at(role) is None


@pytest.mark.django_db
def test_a_missing_dependency_marks_the_role_without_a_reconcile(deploy_role):
    role = OperationRole.objects.get(pk=deploy_role.pk)
    exc = DependencyMissing("x", action="iam:AttachRolePolicy")
    roles._role_missing_note(role, exc)
    first = OperationRole.objects.get(pk=role.pk).missing_since
    assert first is not None
    assert _objects_missing_at(role) is None
    roles._role_missing_note(role, exc)  # the first time it was seen is kept
    assert OperationRole.objects.get(pk=role.pk).missing_since == first


# --- the sweep's look at a baseline ------------------------------------------------


class _Recorder:
    def __init__(self, *, current=True, group=True, marked=True):
        self.current, self.group, self.marked = current, group, marked
        self.calls: list = []

    def install(self, monkeypatch):
        monkeypatch.setattr(
            accounts.baseline, "baseline_is_current", lambda a: self.current
        )
        monkeypatch.setattr(
            accounts.aws, "client", lambda *a: self.calls.append("client")
        )
        monkeypatch.setattr(
            accounts.iam,
            "group_exists",
            lambda client, *, name: self.calls.append(("group", name)) or self.group,
        )
        monkeypatch.setattr(
            accounts.recovery,
            "baseline_mark_missing",
            lambda **kw: self.calls.append(("mark", kw["account_id"])) or self.marked,
        )
        monkeypatch.setattr(
            accounts.recovery,
            "account_reconcile_request",
            lambda **kw: self.calls.append(("reconcile", kw["reason"])),
        )
        monkeypatch.setattr(
            accounts, "request_sync", lambda obj: self.calls.append(("sync", obj.pk))
        )
        return self


def _bare_account(synced_ago=None):
    synced = None if synced_ago is None else timezone.now() - synced_ago
    return AwsAccount.objects.create(
        account_id="123456789012", name="default", last_synced_at=synced
    )


@pytest.mark.django_db
def test_a_baseline_not_in_sync_is_left_to_the_worker(monkeypatch):
    account = _bare_account()
    seen = _Recorder(current=False).install(monkeypatch)
    assert sync.account_baseline_check(account_id=account.pk, settle=timedelta(0))
    assert seen.calls == []


@pytest.mark.django_db
def test_a_baseline_synced_within_the_settle_time_is_not_read(monkeypatch):
    account = _bare_account(synced_ago=timedelta(seconds=30))
    seen = _Recorder().install(monkeypatch)
    settle = timedelta(minutes=1)
    assert sync.account_baseline_check(account_id=account.pk, settle=settle)
    assert seen.calls == []


@pytest.mark.django_db
def test_a_baseline_whose_group_is_there_is_fine(monkeypatch, settings):
    account = _bare_account(synced_ago=timedelta(minutes=2))
    seen = _Recorder(group=True).install(monkeypatch)
    settle = timedelta(minutes=1)
    assert sync.account_baseline_check(account_id=account.pk, settle=settle) is True
    group = settings.OPSGATE["GROUP_NAME"]
    assert seen.calls == ["client", ("group", group)]


@pytest.mark.django_db
@pytest.mark.parametrize("marked", [True, False])
def test_a_missing_group_marks_the_baseline_syncs_it_and_reconciles(
    monkeypatch, settings, marked
):
    account = _bare_account()
    seen = _Recorder(group=False, marked=marked).install(monkeypatch)
    assert (
        sync.account_baseline_check(account_id=account.pk, settle=timedelta(0)) is False
    )
    group = settings.OPSGATE["GROUP_NAME"]
    assert seen.calls == [
        "client",
        ("group", group),
        ("mark", account.pk),
        *([("sync", account.pk)] if marked else []),
        ("reconcile", f"the group {group} is missing in AWS"),
    ]


# --- the deployment's boundaries, and what the log says --------------------------


@pytest.mark.parametrize("present", [set(), {"role"}, {"user"}])
def test_a_missing_boundary_is_a_permanent_error_naming_each_missing_one(
    monkeypatch, present
):
    from provisioning import baseline, boundaries

    account = AwsAccount(account_id="123456789012", partition="aws")
    arns = {
        "role": baseline.boundary_arn(account),
        "user": baseline.user_boundary_arn(account),
    }
    monkeypatch.setattr(
        accounts.iam,
        "policy_exists",
        lambda client, *, arn: any(arns[k] == arn for k in present),
    )
    with pytest.raises(PermanentError) as info:
        accounts._require_boundaries(object(), account)
    exc = info.value
    assert (exc.action, exc.code) == ("iam:GetPolicy", "BoundaryMissing")
    assert exc.message.startswith(f"{sync.BOUNDARY_MISSING} in account 123456789012: ")
    for kind, arn in arns.items():
        assert (arn in exc.message) is (kind not in present)
    assert boundaries.COMMAND in exc.message and boundaries.TEMPLATE in exc.message


def test_both_boundaries_present_is_fine(monkeypatch):
    monkeypatch.setattr(accounts.iam, "policy_exists", lambda client, *, arn: True)
    accounts._require_boundaries(object(), AwsAccount(account_id="123456789012"))


@pytest.mark.django_db
def test_a_failed_sync_is_logged_with_the_model_the_id_and_the_message(
    deploy_role, caplog
):
    with caplog.at_level("WARNING", logger="provisioning.sync"):
        outcomes._record_error(OperationRole, deploy_role.pk, RetryLater("throttled"))
    assert caplog.messages == [
        f"sync of OperationRole {deploy_role.pk} failed: Retrying: throttled"
    ]


def test_an_unanswered_account_summary_is_logged(caplog):
    with caplog.at_level("WARNING", logger="provisioning.sync"):
        sync.read_trust_policy_quota(_Summary(fail=True), AwsAccount())
    (message,) = caplog.messages
    assert message.startswith("GetAccountSummary failed, keeping the stored quota: ")
    assert "iam:GetAccountSummary" in message


# --- grants re-checked at provisioning time ------------------------------------------


def _grants(role):
    from accounts_app.models import AccessRequest

    return (
        AccessRequest.active_grants()
        .filter(role=role)
        .select_related("requester__account", "decided_by")
    )


@pytest.mark.django_db
def test_a_grant_whose_approver_left_is_revoked_with_the_reason(
    carol, dave, bob, deploy_role, payments
):
    from accounts_app.models import AccessRequest, AuditEvent, RequestStatus

    lost = grant(carol, deploy_role, bob)
    provisioned = grant(dave, deploy_role, bob)
    AccessRequest.objects.filter(pk=provisioned.pk).update(
        provisioned_at=timezone.now()
    )
    payments.approvers.remove(bob.user)
    version = OperationRole.objects.get(pk=deploy_role.pk).desired_version
    role = OperationRole.objects.select_related("project").get(pk=deploy_role.pk)

    kept = roles._still_allowed(role, _grants(role))

    assert [g.pk for g in kept] == [provisioned.pk]  # already in AWS: kept
    stored = AccessRequest.objects.get(pk=lost.pk)
    assert stored.status == RequestStatus.REVOKED
    assert stored.end_comment == "Not provisioned: bob may no longer approve payments."
    assert stored.ended_by is None  # opsgate ended it, nobody's comment replaced
    (row,) = AuditEvent.objects.filter(action="request.revoke", object_id=str(lost.pk))
    assert row.actor is None
    assert row.after["reason"] == "approver no longer allowed"
    # The sync running this writes the trust: no second bump.
    assert OperationRole.objects.get(pk=deploy_role.pk).desired_version == version


@pytest.mark.django_db
def test_grants_of_a_current_approver_or_without_one_are_kept(
    carol, dave, bob, deploy_role
):
    from accounts_app.services import access_requests

    approved = grant(carol, deploy_role, bob)
    with transaction.atomic():
        imported = access_requests.grant_import(
            requester=dave, role=deploy_role, now=timezone.now()
        )
    role = OperationRole.objects.select_related("project").get(pk=deploy_role.pk)
    kept = roles._still_allowed(role, _grants(role))
    assert sorted(g.pk for g in kept) == sorted([approved.pk, imported.pk])

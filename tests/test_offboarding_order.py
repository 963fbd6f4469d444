"""Offboarding fails closed (DESIGN §4.1, issue 20 items 6 and 7): the person
is disabled in the identity account at once whatever the workload accounts do,
the IAM user is deleted once every role that trusted it is rewritten, and a
person added again never gets the old IAM user nor loses the new one to the
old record's late deletion."""

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts_app.models import IamUser, IamUserState, OperationRole, SyncStatus
from accounts_app.services import people
from provisioning import reconcile, sync
from provisioning.aws import RetryLater
from tests.conftest import ACCOUNT_ID
from tests.faults import injected, service_credentials_xml
from tests.test_accounts import (  # noqa: F401 - fixtures
    PATH,
    grant,
    hub,
    iam_in,
    person,
    trust_principals,
    world,
)

pytestmark = pytest.mark.django_db


def arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:user{PATH}{name}"


@pytest.fixture
def carol_in_two_accounts(world):  # noqa: F811 - the fixture
    """carol holds the payments role in staging (alone) and in prod (with
    dave), and has an access key and a console password."""
    carol, dave, bob = world["carol"], world["dave"], world["bob"]
    grant(world["staging_role"], carol, bob)
    grant(world["prod_role"], carol, bob)
    grant(world["prod_role"], dave, bob)
    for role in (world["staging_role"], world["prod_role"]):
        sync.role_sync(role_id=role.pk)
    people_iam = iam_in(world["people"])
    people_iam.create_access_key(UserName="carol")
    people_iam.create_login_profile(UserName="carol", Password="Pa55word!x")
    return world


def user_sync(w, iam_user):
    """The worker's sync of an IAM user; moto lacks service-specific
    credentials, answered as IAM does for a user that has none."""
    with injected(w["people"]) as faults:
        faults.answer(
            "ListServiceSpecificCredentials",
            service_credentials_xml(iam_user.name, []),
        )
        sync.iam_user_sync(iam_user_id=iam_user.pk)


def assert_disabled(people_iam, name):
    assert people_iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    with pytest.raises(ClientError, match="NoSuchEntity"):
        people_iam.get_login_profile(UserName=name)
    assert people_iam.list_groups_for_user(UserName=name)["Groups"] == []


@pytest.mark.parametrize("outage", ["AccessDenied", "unreachable"])
def test_offboarding_disables_the_person_at_once_while_a_workload_account_fails(
    carol_in_two_accounts, outage
):
    w = carol_in_two_accounts
    carol, prod_role = w["carol"], w["prod_role"]
    people_iam = iam_in(w["people"])
    people.person_offboard(iam_user=carol, actor=w["bob"].user)

    with injected(w["prod"]) as prod:
        if outage == "unreachable":
            prod.unreachable()
        else:
            prod.fail_every("AccessDenied", "not authorized", status=403)
        with pytest.raises(RetryLater):
            user_sync(w, carol)
        assert prod.sent  # prod was asked, and failed

    assert_disabled(people_iam, "carol")
    # staging (reachable) is rewritten: carol was its only principal.
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam_in(w["staging"]).get_role(RoleName=w["staging_role"].role_name)
    # prod still names carol, so her user stays (disabled) until prod answers.
    assert people_iam.get_user(UserName="carol")["User"]["UserId"]
    carol.refresh_from_db()
    assert carol.sync_status == SyncStatus.PENDING  # the sweep runs it again
    assert "Disabled in people (123456789012)" in carol.last_error
    assert f"{prod_role.role_name} in prod (222222222222)" in carol.last_error
    with pytest.raises(ValidationError, match="still being removed"):
        person(w["people"], "carol")

    user_sync(w, carol)  # prod answers again

    with pytest.raises(ClientError, match="NoSuchEntity"):
        people_iam.get_user(UserName="carol")
    assert trust_principals(iam_in(w["prod"]), prod_role.role_name) == [arn("dave")]
    carol.refresh_from_db()
    assert carol.sync_status == SyncStatus.IN_SYNC and not carol.last_error
    assert OperationRole.objects.get(pk=prod_role.pk).sync_status == SyncStatus.IN_SYNC


def test_a_person_added_again_before_the_old_user_is_deleted_is_refused_then_fresh(
    carol_in_two_accounts,
):
    """Race 1: re-adding while the old IAM user still exists would adopt it,
    keys included. The portal refuses until it is gone, then creates a new
    user with nothing of the old one's."""
    w = carol_in_two_accounts
    old = w["carol"]
    people_iam = iam_in(w["people"])
    old_id = people_iam.get_user(UserName="carol")["User"]["UserId"]
    people.person_offboard(iam_user=old, actor=w["bob"].user)

    with pytest.raises(ValidationError) as refused:
        person(w["people"], "carol")
    assert "carol was offboarded and their IAM user in people is still being " in str(
        refused.value
    )
    assert list(
        IamUser.objects.filter(name="carol").values_list("state", flat=True)
    ) == [IamUserState.REMOVED]

    user_sync(w, old)
    new = person(w["people"], "carol")
    user_sync(w, new)
    new.refresh_from_db()

    assert new.unique_id and new.unique_id != old_id
    assert people_iam.get_user(UserName="carol")["User"]["UserId"] == new.unique_id
    assert people_iam.list_access_keys(UserName="carol")["AccessKeyMetadata"] == []
    with pytest.raises(ClientError, match="NoSuchEntity"):
        people_iam.get_login_profile(UserName="carol")
    assert [
        g["GroupName"]
        for g in people_iam.list_groups_for_user(UserName="carol")["Groups"]
    ] == ["opsgate-operators"]
    for role in ("staging_role", "prod_role"):  # no old trust names the new user
        client = iam_in(w[role.split("_")[0]])
        try:
            principals = trust_principals(client, w[role].role_name)
        except ClientError:
            principals = []
        assert arn("carol") not in principals


def test_the_old_records_late_deletion_never_deletes_the_new_user(
    carol_in_two_accounts,
):
    """Race 2: the new record holds the IAM user's id (an earlier release let
    it adopt the old user); the old record's deletion, running late, leaves it
    alone and the database's "in sync" stays true."""
    w = carol_in_two_accounts
    old = w["carol"]
    people_iam = iam_in(w["people"])
    people.person_offboard(iam_user=old, actor=w["bob"].user)
    old.refresh_from_db()
    new = IamUser.objects.create(  # what the old release's adoption recorded
        user=old.user,
        account=old.account,
        name="carol",
        email=old.email,
        arn=old.arn,
        unique_id=old.unique_id,
        applied_version=1,
        desired_version=1,
    )

    user_sync(w, old)

    assert people_iam.get_user(UserName="carol")["User"]["UserId"] == new.unique_id
    assert [
        g["GroupName"]
        for g in people_iam.list_groups_for_user(UserName="carol")["Groups"]
    ] == ["opsgate-operators"]
    new.refresh_from_db()
    assert new.sync_status == SyncStatus.IN_SYNC
    # Nor does reconcile call it the offboarded record's "extra" user.
    later = timezone.now() + timedelta(hours=1)  # past the quiet period
    report = reconcile.reconcile_account(w["people"], repair=False, now=later)
    assert [f for f in report.found if f.object_type == "user"] == []


@pytest.mark.parametrize("recorded_id", [True, False])
def test_a_late_rerun_of_the_old_record_leaves_the_re_added_user_alone(
    carol_in_two_accounts, recorded_id
):
    """The old record synced again after the new user exists (an admin's
    retry, a task delivered twice): with its own user's id, or none recorded
    (offboarded before its first sync finished), it touches nothing."""
    w = carol_in_two_accounts
    old = w["carol"]
    people_iam = iam_in(w["people"])
    people.person_offboard(iam_user=old, actor=w["bob"].user)
    user_sync(w, old)
    new = person(w["people"], "carol")
    user_sync(w, new)
    new.refresh_from_db()
    people_iam.create_access_key(UserName="carol")  # the new person's own
    if not recorded_id:
        IamUser.objects.filter(pk=old.pk).update(unique_id="", arn="")
    old.refresh_from_db()
    old.bump()

    user_sync(w, old)

    assert people_iam.get_user(UserName="carol")["User"]["UserId"] == new.unique_id
    assert len(people_iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]) == 1
    assert [
        g["GroupName"]
        for g in people_iam.list_groups_for_user(UserName="carol")["Groups"]
    ] == ["opsgate-operators"]

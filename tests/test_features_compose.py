"""Issue 20, items 10 to 15: features combined never grant more than was
approved (DESIGN §4.1 "Features compose"): a request never bridges to a
scheduled grant, an access review follows a grant through its extensions, the
trust-size check counts scheduled grants, a rule is one other person's
approval within the project's bounds, break-glass works on workload-account
roles, and opsgate never writes into an account with credentials of another."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts_app import trust
from accounts_app.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AutoApprovalRule,
    AwsAccount,
    RequestStatus,
    ReviewDecision,
)
from accounts_app.services import (
    access_requests,
    access_reviews,
    accounts,
    break_glass,
    projects,
    roles,
    rules,
)
from provisioning import aws, direct, sync
from tests.conftest import ACCOUNT_ID
from tests.helpers import grant, request

pytestmark = pytest.mark.django_db


def scheduled_grant(person, role, approver, *, days_ahead=5, hours=168):
    req = access_requests.access_request_create(
        requester=person,
        role=role,
        reason="maintenance window",
        duration_hours=hours,
        actor=person.user,
        starts_at=timezone.now() + timedelta(days=days_ahead),
    )
    return access_requests.access_request_approve(
        access_request=req, approver=approver.user
    )


def stored(req) -> AccessRequest:
    return AccessRequest.objects.get(pk=req.pk)


def approved_of(person, role) -> list[AccessRequest]:
    return list(
        AccessRequest.objects.filter(
            requester=person, role=role, status=RequestStatus.APPROVED
        )
    )


# --- 10. A request never extends a scheduled grant ---------------------------


def test_a_short_auto_approved_request_never_bridges_to_a_scheduled_grant(
    alice, bob, carol, deploy_role
):
    rules.auto_rule_add(
        actor=alice.user, role=deploy_role, name="ro", people=[carol.user], max_hours=8
    )
    window = scheduled_grant(carol, deploy_role, bob)
    with pytest.raises(ValidationError) as refused:
        request(carol, deploy_role, hours=1)
    assert "scheduled grant" in str(refused.value)
    # The scheduled grant is untouched and nothing gives access before it.
    assert approved_of(carol, deploy_role) == [window]
    assert stored(window).is_scheduled
    assert stored(window).expires_at == window.starts_at + timedelta(hours=168)
    assert list(AccessRequest.active_grants()) == []


def test_the_api_refuses_a_request_over_a_scheduled_grant_on_its_field(
    bob, carol, deploy_role
):
    from tests.test_api import Api, _create, _problem

    window = scheduled_grant(carol, deploy_role, bob)
    body = _problem(_create(Api(carol), deploy_role, duration_hours=1), 400)
    assert "scheduled grant" in body["errors"]["role"][0]
    assert approved_of(carol, deploy_role) == [window]
    assert AccessRequest.objects.filter(requester=carol).count() == 1


def test_approving_a_request_while_a_scheduled_grant_exists_is_refused(
    bob, carol, deploy_role
):
    pending = request(carol, deploy_role, hours=1)
    start = timezone.now() + timedelta(days=5)
    window = AccessRequest.objects.create(
        requester=carol,
        role=deploy_role,
        reason="maintenance window",
        duration_hours=168,
        status=RequestStatus.APPROVED,
        decided_at=timezone.now(),
        starts_at=start,
        expires_at=start + timedelta(hours=168),
    )
    with pytest.raises(ValidationError, match="scheduled grant"):
        access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        )
    assert stored(pending).status == RequestStatus.PENDING
    assert approved_of(carol, deploy_role) == [window]


def test_an_extension_of_a_started_grant_still_keeps_its_end(bob, carol, deploy_role):
    current = grant(carol, deploy_role, bob, hours=24)
    extension = grant(carol, deploy_role, bob, hours=1)
    assert stored(extension).expires_at == stored(current).expires_at
    assert stored(current).status == RequestStatus.EXPIRED


# --- 11. An access review follows the grant through extensions ---------------


def _review(alice, *, on_deadline=AccessReview.REPORT):
    return access_reviews.review_start(
        actor=alice.user,
        deadline=timezone.now() + timedelta(days=7),
        on_deadline=on_deadline,
    )


def test_a_review_revoke_reaches_the_extension_of_the_reviewed_grant(
    alice, bob, carol, deploy_role
):
    reviewed = grant(carol, deploy_role, bob, hours=8)
    review = _review(alice)
    extension = grant(carol, deploy_role, bob, hours=24)
    assert stored(reviewed).status == RequestStatus.EXPIRED
    item = AccessReviewItem.objects.get(review=review)
    assert item.grant_id == extension.pk  # the item follows the grant
    access_reviews.review_decide(item=item, actor=bob.user, decision="revoked")
    assert stored(extension).status == RequestStatus.REVOKED
    assert approved_of(carol, deploy_role) == []


def test_a_review_closing_with_revoke_reaches_the_extension(
    alice, bob, carol, deploy_role
):
    grant(carol, deploy_role, bob, hours=8)
    review = _review(alice, on_deadline=AccessReview.REVOKE)
    extension = grant(carol, deploy_role, bob, hours=24)
    access_reviews.reviews_close_due(now=review.deadline + timedelta(seconds=1))
    item = AccessReviewItem.objects.get(review=review)
    assert item.decision == ReviewDecision.REVOKED_UNREVIEWED
    assert stored(extension).status == RequestStatus.REVOKED


def test_a_review_covers_scheduled_grants_too(alice, bob, carol, deploy_role):
    window = scheduled_grant(carol, deploy_role, bob)
    review = _review(alice)
    item = AccessReviewItem.objects.get(review=review)
    assert item.grant_id == window.pk
    access_reviews.review_decide(item=item, actor=bob.user, decision="revoked")
    assert stored(window).status == RequestStatus.REVOKED


# --- 12. The trust-size check counts scheduled grants -------------------------


def _quota_for_one(role, person) -> int:
    used, _ = trust.trust_capacity(role, extra_user=person)
    return used + 5  # one person fits, two do not


def test_a_scheduled_grant_holds_its_place_in_the_trust(bob, carol, dave, deploy_role):
    scheduled_grant(carol, deploy_role, bob)
    AwsAccount.objects.filter(pk=deploy_role.account_id).update(
        trust_policy_quota=_quota_for_one(deploy_role, carol)
    )
    deploy_role.account.refresh_from_db()
    pending = request(dave, deploy_role, hours=8)
    with pytest.raises(ValidationError, match="Role full"):
        access_requests.access_request_approve(
            access_request=pending, approver=bob.user
        )
    assert stored(pending).status == RequestStatus.PENDING


def test_a_scheduled_request_is_refused_when_the_trust_is_full_now(
    bob, carol, dave, deploy_role
):
    grant(dave, deploy_role, bob, hours=8)
    AwsAccount.objects.filter(pk=deploy_role.account_id).update(
        trust_policy_quota=_quota_for_one(deploy_role, dave)
    )
    deploy_role.account.refresh_from_db()
    with pytest.raises(ValidationError, match="Role full"):
        scheduled_grant(carol, deploy_role, bob)


# --- 13. A rule is another person's approval, within the project's bounds ----


def test_an_admin_cannot_list_themself_in_a_rule(alice, deploy_role):
    with pytest.raises(ValidationError) as refused:
        rules.auto_rule_add(
            actor=alice.user,
            role=deploy_role,
            name="me",
            people=[alice.user],
            max_hours=8,
        )
    assert "people" in refused.value.message_dict
    assert not deploy_role.auto_rules.exists()


def test_a_rule_never_approves_its_creators_own_request(alice, deploy_role):
    rule = AutoApprovalRule.objects.create(
        role=deploy_role, name="legacy", max_hours=8, created_by=alice.user
    )
    rule.people.set([alice.user])
    req = request(alice, deploy_role, hours=8)
    assert stored(req).status == RequestStatus.PENDING
    assert not stored(req).auto_approved


def test_a_rule_is_bounded_by_the_projects_longest_duration(alice, carol, deploy_role):
    longest = max(deploy_role.project.durations)
    with pytest.raises(ValidationError) as refused:
        rules.auto_rule_add(
            actor=alice.user,
            role=deploy_role,
            name="a year",
            people=[carol.user],
            max_hours=24 * 366,
        )
    assert f"{longest} h" in refused.value.message_dict["max_hours"][0]


def test_a_rule_does_not_approve_alone_where_two_approvals_are_needed(
    alice, bob, carol, payments, deploy_role
):
    rules.auto_rule_add(
        actor=alice.user, role=deploy_role, name="ro", people=[carol.user], max_hours=8
    )
    current = request(carol, deploy_role, hours=1)
    assert stored(current).auto_approved
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    # Neither a new request nor an extension of the current grant.
    extension = request(carol, deploy_role, hours=8)
    assert stored(extension).status == RequestStatus.PENDING
    assert stored(current).status == RequestStatus.APPROVED


def test_a_rule_cannot_be_added_where_two_approvals_are_needed(
    alice, carol, payments, deploy_role
):
    rules.project_rules_set(actor=alice.user, project=payments, approvals_required=2)
    with pytest.raises(ValidationError) as refused:
        rules.auto_rule_add(
            actor=alice.user,
            role=deploy_role,
            name="ro",
            people=[carol.user],
            max_hours=8,
        )
    assert "2 approvals" in str(refused.value)


def test_the_worker_drops_an_auto_grant_whose_rules_author_left(
    aws_env, alice, carol, deploy_role
):
    rules.auto_rule_add(
        actor=alice.user, role=deploy_role, name="ro", people=[carol.user], max_hours=8
    )
    req = request(carol, deploy_role, hours=8)
    assert stored(req).auto_approved
    type(alice.user).objects.filter(pk=alice.user.pk).update(is_active=False)
    sync.role_sync(role_id=deploy_role.pk)
    assert stored(req).status == RequestStatus.REVOKED


# --- 14. Break-glass on a role of a workload account --------------------------


@pytest.fixture
def workload(account, alice):
    """staging: a roles-only account trusting the default account's users."""
    AwsAccount.objects.filter(pk=account.pk).update(holds_roles=True)
    return accounts.account_add(
        actor=alice.user,
        account_id="111111111111",
        name="staging",
        holds_people=False,
        identity_account_id=ACCOUNT_ID,
        assume_role_arn="arn:aws:iam::111111111111:role/opsgate-provisioner",
        external_id="opsgate-staging",
    )


def test_break_glass_works_on_a_role_of_a_workload_account(
    workload, alice, bob, carol, payments
):
    role = roles.role_create(
        actor=alice.user, project=payments, os_user="deploy", account=workload
    )
    break_glass.break_glass_set(
        actor=alice.user, project=payments, allow=True, people=[carol.user]
    )
    req = break_glass.break_glass_activate(
        requester=carol, role=role, reason="prod is down", actor=carol.user
    )
    assert req.status == RequestStatus.APPROVED and req.break_glass
    assert trust.role_principals(role) == [
        f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/carol"
    ]


def test_break_glass_refuses_a_person_of_another_identity_account(
    workload, alice, payments, deploy_role
):
    from accounts_app.services import people

    other = AwsAccount.objects.create(account_id="333333333333", name="elsewhere")
    zoe = people.person_add(
        actor=None, account=other, iam_user_name="zoe", email="zoe@example.com"
    )
    break_glass.break_glass_set(
        actor=alice.user, project=payments, allow=True, people=[zoe.user]
    )
    with pytest.raises(ValidationError) as refused:
        break_glass.break_glass_activate(
            requester=zoe, role=deploy_role, reason="down", actor=zoe.user
        )
    assert "trusts the IAM users of" in str(refused.value)


# --- 15. opsgate's own credentials only in their own account -----------------


@pytest.fixture
def stray(aws_env, db):
    """An account row without a provisioner role whose id is not the one of
    opsgate's credentials (the Django admin skips the services' checks)."""
    return AwsAccount.objects.create(account_id="333333333333", name="stray")


def test_own_credentials_are_refused_in_another_account(stray):
    with pytest.raises(aws.PermanentError) as refused:
        aws.client("iam", stray)
    assert refused.value.code == "WrongAccount"
    assert f"belong to account {ACCOUNT_ID}, not 333333333333" in (
        refused.value.message
    )
    assert "333333333333" in direct.account_reach_check(stray)


def test_the_worker_writes_nothing_with_credentials_of_another_account(
    stray, iam, alice, bob
):
    from accounts_app.services import people

    zoe = people.person_add(
        actor=None, account=stray, iam_user_name="zoe", email="zoe@example.com"
    )
    project = projects.project_create(
        actor=alice.user, name="stray", account=stray, approvers=[bob.user]
    )
    role = roles.role_create(actor=alice.user, project=project, os_user="deploy")
    grant(zoe, role, bob)
    with pytest.raises(aws.PermanentError):
        sync.role_sync(role_id=role.pk)
    role.refresh_from_db()
    assert role.error_is_permanent and "WrongAccount" in role.last_error
    names = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert role.role_name not in names


def test_own_credentials_work_in_their_own_account(aws_env, account):
    assert aws.account_identity(account) == ACCOUNT_ID


def test_an_account_without_a_provisioner_role_is_refused_unless_it_is_opsgates(
    account,
):
    with pytest.raises(ValidationError) as refused:
        accounts.account_add(actor=None, account_id="333333333333", name="sandbox")
    assert "assume_role_arn" in refused.value.message_dict
    staging = accounts.account_add(
        actor=None,
        account_id="333333333333",
        name="sandbox",
        assume_role_arn="arn:aws:iam::333333333333:role/opsgate-provisioner",
    )
    with pytest.raises(ValidationError) as cleared:
        accounts.account_update(actor=None, account=staging, assume_role_arn="")
    assert "assume_role_arn" in cleared.value.message_dict
    # opsgate's own account needs no role.
    accounts.account_update(actor=None, account=account, name="hub")


# --- The migration (0006): authors of earlier rules, items of earlier extensions


def _migration():
    import importlib

    return importlib.import_module("accounts_app.migrations.0006_compose")


def test_the_migration_finds_each_earlier_rules_author_in_the_audit(
    alice, carol, deploy_role
):
    from django.apps import apps

    rule = rules.auto_rule_add(
        actor=alice.user, role=deploy_role, name="ro", people=[carol.user], max_hours=8
    )
    orphan = AutoApprovalRule.objects.create(role=deploy_role, name="x", max_hours=8)
    AutoApprovalRule.objects.filter(pk=rule.pk).update(created_by=None)
    _migration().rule_authors(apps, None)
    assert AutoApprovalRule.objects.get(pk=rule.pk).created_by == alice.user
    # No audit row: no author, and the rule approves nothing.
    assert AutoApprovalRule.objects.get(pk=orphan.pk).created_by is None


def test_the_migration_moves_open_items_to_the_grant_an_extension_made(
    alice, bob, carol, deploy_role
):
    from django.apps import apps

    reviewed = grant(carol, deploy_role, bob, hours=8)
    review = _review(alice)
    first = grant(carol, deploy_role, bob, hours=24)
    second = grant(carol, deploy_role, bob, hours=72)
    # As an extension made before this change left it: on the first grant.
    AccessReviewItem.objects.filter(review=review).update(grant=reviewed)
    _migration().review_items_follow_extensions(apps, None)
    assert AccessReviewItem.objects.get(review=review).grant_id == second.pk
    assert stored(first).status == RequestStatus.EXPIRED


def test_the_projects_list_names_an_os_user_once_across_accounts(
    login, alice, deploy_role, workload
):
    """payments runs as deploy in the default account and in staging: the
    projects list's OS users say deploy once, not "deploy deploy"."""
    from django.urls import reverse

    roles.role_create(
        actor=alice.user,
        project=deploy_role.project,
        os_user="deploy",
        account=workload,
    )
    page = login(alice).get(reverse("projects")).content.decode()
    row = page[page.index(">payments<") :].split("</tr>")[0]
    assert row.count("<code>deploy</code>") == 1

"""The story across accounts in a real browser (issue 11): the admin adds a
workload account on the AWS accounts page and checks that opsgate reaches it;
a person of the identity account asks for a role there, the approver sees the
account beside the project, and the grant's connection kit points at the
workload role with the identity account's MFA device."""

import re

import pytest

from accounts_app.models import AwsAccount
from accounts_app.services import projects, roles
from provisioning import aws, boundaries, sync
from tests.conftest import ACCOUNT_ID, give_totp
from tests.test_accounts_admin import moto_reset
from tests.test_browser import (  # noqa: F401 (fixtures)
    browser,
    browser_type_launch_args,
    shot,
    sign_in,
    with_password,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROD_ID = "222222222222"


@pytest.fixture
def slow_reset(aws_env):
    yield
    moto_reset(aws_env)


def test_a_person_of_the_identity_account_gets_a_role_in_a_workload_account(
    aws_env,
    slow_reset,
    live_server,
    browser,  # noqa: F811 (the fixture imported above)
    alice,
    bob,
    carol,  # noqa: F811
):
    from playwright.sync_api import expect

    with_password(alice), with_password(bob), with_password(carol)
    give_totp(alice.user), give_totp(bob.user)

    # The admin adds prod, reached through its provisioner role.
    admin = sign_in(browser, live_server, "alice@example.com", totp=True)
    admin.get_by_role("link", name="AWS accounts").click()
    admin.get_by_label("Account id").fill(PROD_ID)
    admin.get_by_label("Name").fill("prod")
    admin.get_by_label("Holds people").uncheck()
    admin.get_by_label("Holds roles").check()
    admin.get_by_label("Identity account").fill(ACCOUNT_ID)
    admin.get_by_label("Provisioner role ARN").fill(
        f"arn:aws:iam::{PROD_ID}:role/opsgate-provisioner"
    )
    admin.get_by_label("External id").fill("opsgate-prod")
    admin.get_by_role("button", name="Add account").click()
    expect(admin.get_by_role("status").first).to_contain_text(f"Added prod ({PROD_ID})")
    row = admin.locator("tr", has_text=PROD_ID)
    expect(row).to_contain_text("not checked")
    row.get_by_role("button", name="Check access").click()
    expect(admin.get_by_role("status").first).to_contain_text("opsgate reaches prod")
    expect(admin.locator("tr", has_text=PROD_ID)).to_contain_text("reachable")
    shot(admin, "aws-accounts")

    # The deployment step in prod, and a project whose role lives there.
    prod = AwsAccount.objects.get(account_id=PROD_ID)
    boundaries.apply(account=prod)
    checkout = projects.project_create(
        actor=alice.user, name="checkout", account=prod, approvers=[bob.user]
    )
    role = roles.role_create(actor=alice.user, project=checkout, os_user="deploy")

    # carol (an IAM user of the identity account) asks for it.
    requester = sign_in(browser, live_server, "carol@example.com")
    requester.get_by_role("link", name="Request access").first.click()
    requester.get_by_label("Project").select_option(label="checkout")
    requester.get_by_role("button", name="Next").click()
    expect(requester.locator("main")).to_contain_text(f"in prod {PROD_ID}")
    requester.get_by_label("Run as (OS user)").select_option(
        label="deploy (role checkout-deploy)"
    )
    requester.get_by_label("Reason").fill("CHG-77: checkout hotfix")
    requester.get_by_label("For how long").select_option(label="8 hours")
    requester.get_by_role("button", name="Send request").click()
    expect(requester.locator("[data-request-id] [data-badge]").first).to_have_text(
        "Waiting for approval"
    )

    # bob sees the account beside the project, and approves.
    approver = sign_in(browser, live_server, "bob@example.com", totp=True)
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator("article.request", has_text="carol")
    expect(card).to_contain_text("checkout")
    expect(card).to_contain_text(f"in prod {PROD_ID}")
    card.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status").first).to_contain_text("Approved carol")

    # The worker's job; then carol's connection kit across accounts.
    sync.role_sync(role_id=role.pk)
    # carol's page reloads itself when her request turns into a grant.
    grant = requester.locator("article.grant")
    expect(grant.locator("[data-badge]")).to_have_text("Active", timeout=15_000)
    expect(grant).to_contain_text(f"in prod {PROD_ID}")
    expect(grant).to_contain_text(
        f"role_arn = arn:aws:iam::{PROD_ID}:role/opsgate/checkout-deploy"
    )
    expect(grant).to_contain_text(f"mfa_serial = arn:aws:iam::{ACCOUNT_ID}:mfa/carol")
    expect(grant).to_contain_text("source_profile = opsgate")
    switch = grant.get_by_role("link", name=re.compile("Switch Role"))
    expect(switch).to_have_attribute("href", re.compile(f"account={PROD_ID}"))
    shot(requester, "my-access-cross-account")

    # AWS: the role is in prod and trusts carol's user of the identity account.
    got = aws.client("iam", prod).get_role(RoleName="checkout-deploy")["Role"]
    principals = got["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert principals == f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/carol" or (
        principals == [f"arn:aws:iam::{ACCOUNT_ID}:user/opsgate/carol"]
    )

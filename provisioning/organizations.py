"""Discovery: the accounts of the AWS Organization opsgate's own credentials
can read (organizations:ListAccounts, or the accounts under one OU and its
children). An admin then enables the ones opsgate manages
(accounts_app.services.accounts.account_add)."""

from dataclasses import dataclass
from typing import Any

from accounts_app.models import AwsAccount
from provisioning import aws
from provisioning.aws import aws_action


@dataclass(frozen=True)
class OrgAccount:
    account_id: str
    name: str
    email: str
    status: str
    managed: AwsAccount | None  # the opsgate account, once enabled


def _pages(call, key: str, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    while True:
        page = call(**kwargs)
        items += page.get(key, [])
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def _under(client: Any, parent_id: str) -> list[dict]:
    """The accounts in an OU and in the OUs below it."""
    with aws_action("organizations:ListAccountsForParent"):
        found = _pages(client.list_accounts_for_parent, "Accounts", ParentId=parent_id)
    with aws_action("organizations:ListOrganizationalUnitsForParent"):
        children = _pages(
            client.list_organizational_units_for_parent,
            "OrganizationalUnits",
            ParentId=parent_id,
        )
    for child in children:
        found += _under(client, child["Id"])
    return found


def organization_accounts(*, ou_id: str = "") -> list[OrgAccount]:
    """Sorted by name; raises AwsError (AWSOrganizationsNotInUseException,
    AccessDenied, ParentNotFoundException...) with AWS's message."""
    client = aws.client("organizations")
    if ou_id:
        listed = _under(client, ou_id)
    else:
        with aws_action("organizations:ListAccounts"):
            listed = _pages(client.list_accounts, "Accounts")
    managed = {a.account_id: a for a in AwsAccount.objects.all()}
    return sorted(
        (
            OrgAccount(
                account_id=a["Id"],
                name=a.get("Name", ""),
                email=a.get("Email", ""),
                status=a.get("Status", ""),
                managed=managed.get(a["Id"]),
            )
            for a in listed
        ),
        key=lambda a: (a.name.lower(), a.account_id),
    )

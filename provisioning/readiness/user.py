"""The person's IAM user: it exists, is in the operators group and has an MFA
device (without one the group denies everything and the trust refuses)."""

from urllib.parse import quote

from accounts_app.models import AccessRequest
from provisioning import aws
from provisioning.aws import AwsError, PermanentError, aws_action
from provisioning.readiness.checks import Check, conf, failed_call


def mfa_console_link(*, account_id: str, user_name: str) -> str:
    """The IAM console page where the person assigns an MFA device (their
    user's Security credentials tab), reached after signing in to their
    account."""
    page = f"/iam/home#/users/details/{quote(user_name, safe='')}"
    return (
        f"https://{account_id}.signin.aws.amazon.com/console/iam?"
        f"redirect_uri={quote('https://console.aws.amazon.com' + page, safe='')}"
        "%3Fsection%3Dsecurity_credentials"
    )


def user_checks(grant: AccessRequest, *, recent: bool) -> list[Check]:
    person = grant.requester
    account = person.account
    iam = aws.client("iam", account)
    name = person.name
    title = "Your IAM user"
    try:
        with aws_action("iam:GetUser"):
            iam.get_user(UserName=name)
    except PermanentError as exc:
        if exc.code != "NoSuchEntity":
            return [failed_call("iam_user", title, exc)]
        return [
            Check(
                "iam_user",
                title,
                False,
                f"Your IAM user {name} does not exist in account {account.account_id}.",
                fix="opsgate creates it; an admin sees why it has not on your "
                "page under People.",
                propagating=recent,
            )
        ]
    except AwsError as exc:
        return [failed_call("iam_user", title, exc)]
    checks = [Check("iam_user", title, True, f"{name} exists in {account.account_id}.")]
    group = conf("GROUP_NAME")
    try:
        with aws_action("iam:ListGroupsForUser"):
            pages = iam.get_paginator("list_groups_for_user").paginate(UserName=name)
            groups = {g["GroupName"] for page in pages for g in page["Groups"]}
    except AwsError as exc:
        checks.append(failed_call("operators_group", "Operators group", exc))
    else:
        checks.append(
            Check("operators_group", "Operators group", True, f"{name} is in {group}.")
            if group in groups
            else Check(
                "operators_group",
                "Operators group",
                False,
                f"{name} is not in the group {group}, whose policies let it "
                "assume roles.",
                fix="An admin retries the sync of your IAM user (People → you → "
                "Retry); opsgate adds it to the group.",
                propagating=recent,
            )
        )
    try:
        with aws_action("iam:ListMFADevices"):
            devices = iam.list_mfa_devices(UserName=name).get("MFADevices", [])
    except AwsError as exc:
        checks.append(failed_call("mfa", "MFA device", exc))
        return checks
    if devices:
        checks.append(Check("mfa", "MFA device", True, f"{name} has an MFA device."))
    else:
        checks.append(
            Check(
                "mfa",
                "MFA device",
                False,
                f"Your IAM user {name} has no MFA device: AWS denies everything "
                "it does, and the role's trust requires MFA, until you register "
                "one.",
                fix=f"Sign in to the AWS console as {name} (account "
                f"{account.account_id}), open Security credentials, choose "
                f"Assign MFA device and name the virtual device exactly {name}. "
                "Then press Check again.",
                link=mfa_console_link(account_id=account.account_id, user_name=name),
            )
        )
    return checks

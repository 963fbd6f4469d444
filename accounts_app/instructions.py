"""How to use a grant: pure functions from plain values to the text the
requester copies (DESIGN §3, flow 3). No ORM, no AWS."""

from dataclasses import dataclass
from urllib.parse import quote, urlencode

EXAMPLE_INSTANCE = "i-0123456789abcdef0"
SOURCE_PROFILE = "opsgate"  # holds the person's own access keys


@dataclass(frozen=True)
class Connection:
    role_arn: str
    switch_role_url: str
    profile_name: str
    aws_config: str
    ssm_command: str
    # The profile's values, as the aws_config text writes them (the API and
    # the CLI write the same profile).
    mfa_serial: str
    source_profile: str
    role_session_name: str
    region: str


def switch_role_url(
    *, account_id: str, path: str, role_name: str, display_name: str
) -> str:
    """The console's Switch Role link. It wants the role name with its path and
    without the leading slash (opsgate/payments-deploy)."""
    query = urlencode(
        {
            "roleName": f"{path.strip('/')}/{role_name}".lstrip("/"),
            "account": account_id,
            "displayName": display_name[:64],
        },
        quote_via=quote,
        safe="/",
    )
    return f"https://signin.aws.amazon.com/switchrole?{query}"


def connection(
    *,
    account_id: str,
    partition: str,
    path: str,
    role_name: str,
    role_arn: str,
    iam_user_name: str,
    display_name: str,
    region: str,
    instance_id: str = "",
    identity_account_id: str = "",
) -> Connection:
    """`account_id` is the role's (workload) account; `identity_account_id`
    the account of the person's IAM user, whose access keys the source
    profile holds and whose MFA device signs (default: the same account)."""
    identity_account_id = identity_account_id or account_id
    profile = f"opsgate-{role_name}"
    if identity_account_id != account_id:
        # The same role name may live in several workload accounts.
        profile = f"{profile}-{account_id}"
    mfa_serial = f"arn:{partition}:iam::{identity_account_id}:mfa/{iam_user_name}"
    source_comment = "# your own access keys: aws configure --profile opsgate"
    if identity_account_id != account_id:
        source_comment += f" (IAM user {iam_user_name} in {identity_account_id})"
    config = "\n".join(
        [
            f"[profile {SOURCE_PROFILE}]",
            source_comment,
            f"region = {region}",
            "",
            f"[profile {profile}]",
            f"role_arn = {role_arn}",
            f"mfa_serial = {mfa_serial}",
            f"source_profile = {SOURCE_PROFILE}",
            f"role_session_name = {iam_user_name}",
            f"region = {region}",
        ]
    )
    ssm = (
        f"aws ssm start-session --target {instance_id or EXAMPLE_INSTANCE} "
        f"--profile {profile}"
    )
    return Connection(
        role_arn=role_arn,
        switch_role_url=switch_role_url(
            account_id=account_id,
            path=path,
            role_name=role_name,
            display_name=display_name,
        ),
        profile_name=profile,
        aws_config=config,
        ssm_command=ssm,
        mfa_serial=mfa_serial,
        source_profile=SOURCE_PROFILE,
        role_session_name=iam_user_name,
        region=region,
    )

"""What a requester copies: built by pure functions, compared whole."""

from accounts_app import instructions


def test_connection_instructions_for_a_grant():
    got = instructions.connection(
        account_id="123456789012",
        partition="aws",
        path="/opsgate/",
        role_name="payments-deploy",
        role_arn="arn:aws:iam::123456789012:role/opsgate/payments-deploy",
        iam_user_name="carol",
        display_name="payments as deploy",
        region="eu-west-1",
        instance_id="i-0abc",
    )
    assert got == instructions.Connection(
        role_arn="arn:aws:iam::123456789012:role/opsgate/payments-deploy",
        switch_role_url="https://signin.aws.amazon.com/switchrole?"
        "roleName=opsgate/payments-deploy&account=123456789012"
        "&displayName=payments%20as%20deploy",
        profile_name="opsgate-payments-deploy",
        aws_config="[profile opsgate]\n"
        "# your own access keys: aws configure --profile opsgate\n"
        "region = eu-west-1\n"
        "\n"
        "[profile opsgate-payments-deploy]\n"
        "role_arn = arn:aws:iam::123456789012:role/opsgate/payments-deploy\n"
        "mfa_serial = arn:aws:iam::123456789012:mfa/carol\n"
        "source_profile = opsgate\n"
        "role_session_name = carol\n"
        "region = eu-west-1",
        ssm_command="aws ssm start-session --target i-0abc "
        "--profile opsgate-payments-deploy",
        mfa_serial="arn:aws:iam::123456789012:mfa/carol",
        source_profile="opsgate",
        role_session_name="carol",
        region="eu-west-1",
    )


def test_switch_role_link_escapes_the_display_name_and_handles_the_root_path():
    url = instructions.switch_role_url(
        account_id="123456789012",
        path="/",
        role_name="data-analyst",
        display_name="Data Platform & co / 決済",
    )
    assert url == (
        "https://signin.aws.amazon.com/switchrole?roleName=data-analyst"
        "&account=123456789012"
        "&displayName=Data%20Platform%20%26%20co%20/%20%E6%B1%BA%E6%B8%88"
    )


def test_ssm_example_uses_a_placeholder_without_an_instance():
    got = instructions.connection(
        account_id="123456789012",
        partition="aws",
        path="/opsgate/",
        role_name="r",
        role_arn="arn",
        iam_user_name="u",
        display_name="d",
        region="us-east-1",
    )
    assert got.ssm_command == (
        "aws ssm start-session --target i-0123456789abcdef0 --profile opsgate-r"
    )

"""DESIGN §5 input rules, table-driven."""

import pytest
from django.core.exceptions import ValidationError

from accounts_app import naming, validation

GOOD_USER_NAMES = ["alice", "a", "x" * 64, "first.last@example", "ops_team+1=2-3"]
BAD_USER_NAMES = [
    ("", "required"),
    ("with space", "chars"),
    ("x" * 65, "length"),
    ("аlice", "chars"),  # Cyrillic а
    ("müller", "chars"),
    ("a,b", "comma"),
    (" alice", "blank"),
    ("alice ", "blank"),
    ("al*ce", "chars"),
]


@pytest.mark.parametrize("name", GOOD_USER_NAMES)
def test_valid_iam_user_names_pass(name):
    validation.validate_iam_user_name(name)


@pytest.mark.parametrize(("name", "code"), BAD_USER_NAMES)
def test_invalid_iam_user_names_are_rejected_with_a_reason(name, code):
    with pytest.raises(ValidationError) as info:
        validation.validate_iam_user_name(name)
    assert info.value.code == code


@pytest.mark.parametrize(
    "name",
    ["payments", "Test Project 1", "決済チーム", "a/b:c=d+e-f@g_h.i", "x" * 256, "Ærø"],
)
def test_valid_project_names_pass(name):
    validation.validate_project_name(name)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 257, "length"),
        ("${aws:username}", "chars"),
        ("pay*", "chars"),
        ("pay?", "chars"),
        ('say "hi"', "chars"),
        ("it's", "chars"),
        ("aws:reserved", "reserved"),
        ("AWS:reserved", "reserved"),
        (" payments", "blank"),
        ("payments ", "blank"),
        ("tab\there", "chars"),
        ("semi;colon", "chars"),
    ],
)
def test_invalid_project_names_are_rejected(name, code):
    with pytest.raises(ValidationError) as info:
        validation.validate_project_name(name)
    assert info.value.code == code


@pytest.mark.parametrize(
    "os_user", ["deploy", "_svc", "ec2-user", "a" * 32, "os-user1"]
)
def test_valid_os_users_pass(os_user):
    validation.validate_os_user(os_user)


@pytest.mark.parametrize(
    ("os_user", "code"),
    [
        ("root", "root"),
        ("Deploy", "chars"),
        ("a" * 33, "length"),
        ("dep;rm -rf", "chars"),
        ("$(id)", "chars"),
        ("1user", "chars"),
        ("", "chars"),
        ("dé", "chars"),
    ],
)
def test_invalid_os_users_are_rejected(os_user, code):
    with pytest.raises(ValidationError) as info:
        validation.validate_os_user(os_user)
    assert info.value.code == code


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111122223333:user/non-97-test-user3",
        "arn:aws:iam::111122223333:user/team/ops/alice",
        "arn:aws-us-gov:iam::111122223333:user/alice",
    ],
)
def test_valid_principal_arns_pass(arn):
    validation.validate_principal_arn(arn)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111122223333:user/*",
        "arn:aws:iam::111122223333:user/al?ce",
        "arn:aws:iam::111122223333:root",
        "111122223333",
        "arn:aws:iam::111122223333:role/admin",
        "arn:aws:sts::111122223333:assumed-role/admin/alice",
        "arn:aws:iam::11112222333:user/alice",
        "arn:aws:iam::1111222233334:user/alice",
        "arn:aws:iam:us-east-1:111122223333:user/alice",
        "*",
        "arn:aws:iam::111122223333:user/alice ",
    ],
)
def test_invalid_principal_arns_are_rejected(arn):
    with pytest.raises(ValidationError):
        validation.validate_principal_arn(arn)


def test_role_names_must_fit_switch_role_with_the_path():
    validation.validate_iam_role_name("x" * 56, path="/opsgate/")
    with pytest.raises(ValidationError) as info:
        validation.validate_iam_role_name("x" * 57, path="/opsgate/")
    assert info.value.code == "length"


@pytest.mark.parametrize(
    ("project", "os_user", "expected"),
    [
        ("payments", "deploy", "payments-deploy"),
        ("Test Project 1", "os-user1", "test-project-1-os-user1"),
    ],
)
def test_derived_role_names_are_readable_when_the_project_name_allows(
    project, os_user, expected
):
    assert naming.derive_role_name(project, os_user, path="/opsgate/") == expected


@pytest.mark.parametrize(
    ("project", "os_user"),
    [
        ("決済チーム", "deploy"),
        ("a/b:c", "deploy"),
        ("x" * 256, "a" * 32),
        ("Ünïcode", "ops"),
    ],
)
def test_derived_role_names_are_ascii_valid_and_deterministic(project, os_user):
    name = naming.derive_role_name(project, os_user, path="/opsgate/")
    validation.validate_iam_role_name(name, path="/opsgate/")
    assert name == naming.derive_role_name(project, os_user, path="/opsgate/")
    assert name != naming.derive_role_name(project + "2", os_user, path="/opsgate/")

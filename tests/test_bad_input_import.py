"""Bad input through the import: every case names its place and field, and
neither the database nor AWS changes."""

import json

import pytest
from django.core.management import CommandError, call_command

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
)
from provisioning import aws

pytestmark = pytest.mark.django_db

OK_USER = {"userName": "ok-user"}


def role(**fields):
    base = {
        "projectName": "payments",
        "ssmSessionRunAs": "deploy",
        "rolePrincipalUserNames": ["ok-user"],
    }
    return {**base, **fields}


CASES = [
    # (case, users, roles, expected place, expected words)
    (
        "space in user name",
        [{"userName": "bad user"}],
        [],
        "users[0].userName",
        "no spaces",
    ),
    ("65 characters", [{"userName": "x" * 65}], [], "users[0].userName", "At most 64"),
    (
        "Cyrillic a",
        [{"userName": "аlice"}],
        [],
        "users[0].userName",
        "no spaces or other",
    ),
    ("comma", [{"userName": "a,b"}], [], "users[0].userName", "Commas are not allowed"),
    (
        "leading blank",
        [{"userName": " alice"}],
        [],
        "users[0].userName",
        "spaces at the",
    ),
    (
        "trailing blank",
        [{"userName": "alice "}],
        [],
        "users[0].userName",
        "spaces at the",
    ),
    (
        "case-only duplicate",
        [{"userName": "Alice"}, {"userName": "alice"}],
        [],
        "users[1].userName",
        "appears twice",
    ),
    (
        "missing user name",
        [{"emailAddress": "a@example.com"}],
        [],
        "users[0].userName",
        "required",
    ),
    (
        "bad e-mail",
        [{"userName": "a", "emailAddress": "not-an-email"}],
        [],
        "users[0].emailAddress",
        "valid email",
    ),
    (
        "empty project",
        [OK_USER],
        [role(projectName="")],
        "roles[0].projectName",
        "required",
    ),
    (
        "project over 256",
        [OK_USER],
        [role(projectName="p" * 257)],
        "roles[0].projectName",
        "At most 256",
    ),
    (
        "project with ${aws:username}",
        [OK_USER],
        [role(projectName="${aws:username}")],
        "roles[0].projectName",
        "remove '$'",
    ),
    (
        "project with *",
        [OK_USER],
        [role(projectName="pay*")],
        "roles[0].projectName",
        "remove '*'",
    ),
    (
        "project with ?",
        [OK_USER],
        [role(projectName="pay?")],
        "roles[0].projectName",
        "remove '?'",
    ),
    (
        "project with quotes",
        [OK_USER],
        [role(projectName='pay"ments')],
        "roles[0].projectName",
        "remove '\"'",
    ),
    (
        "project starting aws:",
        [OK_USER],
        [role(projectName="aws:x")],
        "roles[0].projectName",
        "cannot start with 'aws:'",
    ),
    (
        "OS user root",
        [OK_USER],
        [role(ssmSessionRunAs="root")],
        "roles[0].ssmSessionRunAs",
        "root is not allowed",
    ),
    (
        "OS user shell",
        [OK_USER],
        [role(ssmSessionRunAs="x;rm -rf /")],
        "roles[0].ssmSessionRunAs",
        "Linux user name",
    ),
    (
        "OS user uppercase",
        [OK_USER],
        [role(ssmSessionRunAs="Deploy")],
        "roles[0].ssmSessionRunAs",
        "Linux user name",
    ),
    (
        "OS user over 32",
        [OK_USER],
        [role(ssmSessionRunAs="a" * 33)],
        "roles[0].ssmSessionRunAs",
        "At most 32",
    ),
    (
        "principal wildcard",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:iam::111122223333:user/*"])],
        "roles[0].rolePrincipalUserArns[0]",
        "no wildcards",
    ),
    (
        "principal root",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:iam::111122223333:root"])],
        "roles[0].rolePrincipalUserArns[0]",
        "account roots",
    ),
    (
        "principal bare account",
        [OK_USER],
        [role(rolePrincipalUserArns=["111122223333"])],
        "roles[0].rolePrincipalUserArns[0]",
        "IAM user ARN",
    ),
    (
        "principal role",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:iam::111122223333:role/admin"])],
        "roles[0].rolePrincipalUserArns[0]",
        "IAM user ARN",
    ),
    (
        "principal assumed role",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:sts::111122223333:assumed-role/a/b"])],
        "roles[0].rolePrincipalUserArns[0]",
        "IAM user ARN",
    ),
    (
        "principal 11 digits",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:iam::11112222333:user/a"])],
        "roles[0].rolePrincipalUserArns[0]",
        "IAM user ARN",
    ),
    (
        "principal with region",
        [OK_USER],
        [role(rolePrincipalUserArns=["arn:aws:iam:us-east-1:111122223333:user/a"])],
        "roles[0].rolePrincipalUserArns[0]",
        "IAM user ARN",
    ),
    (
        "unknown principal name",
        [OK_USER],
        [role(rolePrincipalUserNames=["ghost"])],
        "roles[0].rolePrincipalUserNames[0]",
        "not in users",
    ),
    (
        "role name with space",
        [OK_USER],
        [role(roleName="my role")],
        "roles[0].roleName",
        "no spaces",
    ),
    (
        "role name too long for Switch Role",
        [OK_USER],
        [role(roleName="r" * 57)],
        "roles[0].roleName",
        "At most 56",
    ),
    (
        "same project and OS user twice",
        [OK_USER],
        [role(), role()],
        "roles[1]",
        "appears twice",
    ),
]


@pytest.mark.parametrize(
    ("case", "users", "roles", "place", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_import_entries_name_the_place_and_write_nothing(
    account, tmp_path, capsys, case, users, roles, place, words
):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"users": users, "roles": roles}))
    with aws.observe_calls() as calls, pytest.raises(CommandError):
        call_command("import_operation_users", str(path))
    errors = capsys.readouterr().err
    assert f"{place}" in errors and words in errors, errors
    assert calls == []
    assert (
        IamUser.objects.count(),
        Project.objects.count(),
        OperationRole.objects.count(),
        AccessRequest.objects.count(),
        AuditEvent.objects.count(),
    ) == (0, 0, 0, 0, 0)

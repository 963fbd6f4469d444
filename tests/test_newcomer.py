"""A newcomer's first commands (issue 23): `migrate` alone leaves a working
cache, `opsgate_setup` exists and does what the messages say, and `demo_totp`
outside the demo says in one line what to run."""

import os
import sqlite3
import subprocess
import sys

import pytest
from django.core.management import call_command

from accounts_app.models import AwsAccount, IamUser
from tests.conftest import ACCOUNT_ID
from tests.workers import ROOT


def manage(
    *args: str, env: dict, cwd=ROOT, unset=("DATABASE_URL",)
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A folder whose SQLite database has had `migrate` and nothing else, with
    the default cache (CACHE_URL unset: the database's table)."""
    folder = tmp_path_factory.mktemp("migrated")
    env = {"OPSGATE_VAR_DIR": str(folder)}
    done = manage("migrate", "--noinput", env=env, unset=("DATABASE_URL", "CACHE_URL"))
    assert done.returncode == 0, done.stderr
    return folder


def test_migrate_alone_creates_the_database_cache_table(migrated):
    tables = {
        name
        for (name,) in sqlite3.connect(migrated / "opsgate.sqlite3").execute(
            "select name from sqlite_master where type='table'"
        )
    }
    assert "opsgate_cache" in tables, tables
    # And the default cache works on it.
    done = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; from django.core.cache import cache; "
        "print(settings.CACHES['default']['BACKEND']); "
        "cache.set('newcomer', 'works'); print(cache.get('newcomer'))",
        env={"OPSGATE_VAR_DIR": str(migrated)},
        unset=("DATABASE_URL", "CACHE_URL"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "django.core.cache.backends.db.DatabaseCache",
        "works",
    ]


def test_demo_totp_on_a_database_that_is_not_the_demos_says_where_it_is(
    migrated, tmp_path
):
    """OPSGATE_VAR_DIR unset while the demo runs: the database found has no
    demo people; the one line names the demo's command."""
    done = manage(
        "demo_totp",
        "bob@example.com",
        env={"DATABASE_URL": f"sqlite:///{migrated / 'opsgate.sqlite3'}"},
        cwd=tmp_path,
        unset=("DATABASE_URL", "CACHE_URL", "OPSGATE_VAR_DIR"),
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "bob@example.com has no TOTP authenticator" in lines[0]
    assert "is not the demo's" in lines[0]
    assert (
        f"OPSGATE_VAR_DIR={ROOT / 'var' / 'demo'} {sys.executable} "
        f"{ROOT / 'manage.py'} demo_totp bob@example.com" in lines[0]
    )


def test_demo_totp_without_the_demo_database_says_what_to_run_in_one_line(tmp_path):
    done = manage(
        "demo_totp",
        "bob@example.com",
        env={"OPSGATE_VAR_DIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "scripts/demo.sh" in lines[0]
    # The exact command, with absolute paths that work from any folder.
    assert f"{ROOT / 'var' / 'demo'}" in lines[0]
    assert f"{ROOT / 'manage.py'} demo_totp bob@example.com" in lines[0]
    assert not (tmp_path / "opsgate.sqlite3").exists()


def test_demo_login_help_prints_the_totp_command_with_absolute_paths(capsys):
    call_command("demo_login_help")
    out = capsys.readouterr().out
    assert f"{sys.executable} {ROOT / 'manage.py'} demo_totp bob@example.com" in out


@pytest.mark.django_db
def test_opsgate_setup_records_the_default_account_and_invites_a_first_admin(
    aws_env, capsys
):
    call_command("opsgate_setup", "--admin-email", "ops@example.com")
    out = capsys.readouterr().out
    account = AwsAccount.objects.get(is_default=True)
    assert account.account_id == ACCOUNT_ID
    person = IamUser.objects.get(name="ops")
    assert person.user.is_staff and person.user.is_superuser
    assert not person.user.has_usable_password()
    assert "/accounts/password/reset/key/" in out
    # Again: nothing new, nothing changed.
    call_command("opsgate_setup", "--admin-email", "ops@example.com")
    assert "ops@example.com exists" in capsys.readouterr().out
    assert AwsAccount.objects.count() == 1
    assert IamUser.objects.count() == 1


@pytest.mark.django_db
def test_opsgate_setup_refuses_a_bad_admin_name_with_the_option(aws_env):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--admin-name"):
        call_command(
            "opsgate_setup", "--admin-email", "x@example.com", "--admin-name", "a b"
        )
    assert not IamUser.objects.exists()


@pytest.mark.django_db
def test_the_dashboard_without_an_account_names_what_exists(login, django_user_model):
    admin = django_user_model.objects.create_user(
        "root", "root@example.com", "pw", is_staff=True, is_superuser=True
    )
    page = login(admin).get("/dashboard/").content.decode()
    assert "opsgate_setup" in page
    assert "AWS accounts</a> page" in page


@pytest.mark.django_db
def test_a_request_asked_seconds_ago_says_just_now_not_zero_minutes(
    login, bob, carol, deploy_role
):
    from datetime import timedelta

    from django.urls import reverse

    from accounts_app.models import AccessRequest
    from tests.helpers import request

    fresh = request(carol, deploy_role)
    page = login(bob).get(reverse("approvals")).content.decode()
    assert "Asked just now" in page
    assert "0 minutes" not in page
    AccessRequest.objects.filter(pk=fresh.pk).update(
        created_at=fresh.created_at - timedelta(minutes=3)
    )
    page = login(bob).get(reverse("approvals")).content.decode()
    assert "Asked 3\xa0minutes ago" in page


@pytest.mark.django_db
def test_no_form_lets_the_browser_cut_what_was_typed(login, alice, carol, deploy_role):
    """A 65-character IAM name cut to 64 by `maxlength` would create a person
    nobody typed; without it the server names the field and the length."""
    from django.urls import reverse

    from accounts_app.models import IamUser

    admin = login(alice)
    pages = [
        reverse("person_add"),
        reverse("request_access") + f"?project={deploy_role.project_id}",
        reverse("project_detail", args=[deploy_role.project_id]),
    ]
    for url in pages:
        page = admin.get(url)
        assert page.status_code == 200, url
        assert "maxlength" not in page.content.decode(), url
    response = admin.post(
        reverse("person_add"),
        {"iam_user_name": "f" * 65, "email": "f@example.com"},
    )
    assert "at most 64 characters (it has 65)" in response.content.decode()
    assert not IamUser.objects.filter(name__startswith="fff").exists()


def test_the_docs_name_every_variable_the_demo_script_reads():
    """The demo's port overrides were documented only in its error message."""
    import re

    read = set(
        re.findall(r"\$\{?(OPSGATE_\w+)", (ROOT / "scripts/demo.sh").read_text())
    )
    assert {"OPSGATE_DEMO_PORT", "OPSGATE_DEMO_MOTO_PORT"} <= read
    docs = "\n".join(p.read_text() for p in sorted((ROOT / "docs").rglob("*.md")))
    missing = sorted(name for name in read if name not in docs)
    assert missing == [], f"docs/ does not name {missing}"


def test_every_command_a_message_names_exists():
    """Messages said "Run `manage.py opsgate_setup`" before there was one."""
    import re

    from django.core.management import get_commands

    named = {}
    for folder in ("accounts_app", "portal", "provisioning", "templates"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".html", ".txt"):
                for name in re.findall(r"manage\.py (\w+)", path.read_text()):
                    named.setdefault(name, path.relative_to(ROOT))
    assert "opsgate_setup" in named
    missing = {n: str(p) for n, p in named.items() if n not in get_commands()}
    assert missing == {}, f"no such manage.py command: {missing}"

"""opsgate's two SSM documents (issue 25): what the files under deploy/ hold,
that their parameter pattern is opsgate's OS-user rule, and what their
scripts do, run by the instance's shell (dash and bash) with useradd, getent
and friends replaced by stand-ins that keep a passwd file in a temporary
directory (nothing of this machine's users is touched)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from accounts_app.validation import validate_os_user
from provisioning import os_user_documents
from provisioning.os_user_documents import CHECK, ENSURE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / os_user_documents.TEMPLATE


# --- The committed files ------------------------------------------------------


def test_the_documents_in_deploy_ssm_are_what_opsgate_generates():
    files = sorted((ROOT / "deploy" / "ssm").glob("*.json"))
    assert [f.name for f in files] == [f"{CHECK}.json", f"{ENSURE}.json"]
    for file in files:
        assert json.loads(file.read_text()) == os_user_documents.documents()[file.stem]


def test_the_cloudformation_template_in_deploy_is_what_opsgate_generates():
    assert (
        json.loads(TEMPLATE.read_text()) == os_user_documents.cloudformation_template()
    )
    resources = json.loads(TEMPLATE.read_text())["Resources"].values()
    assert {r["Properties"]["Name"]: r["Properties"]["Content"] for r in resources} == (
        os_user_documents.documents()
    )
    assert {r["Type"] for r in resources} == {"AWS::SSM::Document"}
    assert {r["Properties"]["DocumentType"] for r in resources} == {"Command"}


def test_the_cloudformation_template_passes_cfn_lint():
    from cfnlint.api import lint

    assert [str(m) for m in lint(TEMPLATE.read_text())] == []
    broken = json.loads(TEMPLATE.read_text())
    broken["Resources"]["EnsureOsUserDocument"]["Properties"]["DocumentType"] = "Shell"
    assert lint(json.dumps(broken))  # the linter does see a bad template


@pytest.mark.parametrize("name", [CHECK, ENSURE])
def test_each_document_is_one_linux_shell_step_with_one_string_parameter(name):
    document = os_user_documents.documents()[name]
    assert document["schemaVersion"] == "2.2"
    assert document["parameters"] == {
        "UserName": {
            "type": "String",
            "description": document["parameters"]["UserName"]["description"],
            "allowedPattern": os_user_documents.ALLOWED_PATTERN,
        }
    }
    [step] = document["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["precondition"] == {"StringEquals": ["platformType", "Linux"]}
    script = "\n".join(step["inputs"]["runCommand"])
    # The parameter appears once, single-quoted; nothing else is interpolated.
    assert script.count("{{") == 1
    assert "user='{{ UserName }}'" in script


# --- The parameter pattern is the OS-user rule --------------------------------


def rule_allows(value: str) -> bool:
    try:
        validate_os_user(value)
    except ValidationError:
        return False
    return True


NEAR_ROOT = [
    "root", "roo", "roots", "_root", "rooot", "rot", "rout", "toor", "r00t",
    "rooT", "Root", "ROOT", "root ", " root", "root\n", "root-", "xoot", "ruot",
]  # fmt: skip


@pytest.mark.parametrize("value", NEAR_ROOT)
def test_the_pattern_allows_what_the_rule_allows_near_root(value):
    assert os_user_documents.allowed(value) is rule_allows(value)


@given(
    st.text(
        alphabet=st.sampled_from("roota_-z09A ;'$`\"\n\\/.|&"),
        min_size=0,
        max_size=35,
    )
)
def test_the_pattern_allows_exactly_what_the_os_user_rule_allows(value):
    assert os_user_documents.allowed(value) is rule_allows(value)


@given(st.from_regex(r"[a-z_][a-z0-9_-]{0,31}", fullmatch=True))
def test_every_linux_user_name_but_root_passes_the_pattern(value):
    assert os_user_documents.allowed(value) is (value != "root")


def test_the_pattern_keeps_out_every_character_that_could_leave_the_quotes():
    for char in "'\"$`\\;&|<>(){}[]*?! \t\n\r":
        assert not os_user_documents.allowed(f"a{char}b")
    assert os_user_documents.allowed("a" * 32)
    assert not os_user_documents.allowed("a" * 33)


@pytest.mark.parametrize(
    ("document", "output", "expected"),
    [
        (CHECK, "opsgate-os-user: exists\n", "exists"),
        (CHECK, "opsgate-os-user: missing\n", "missing"),
        (ENSURE, "noise\nopsgate-os-user: created\n", "created"),
        (ENSURE, "opsgate-os-user: missing\n", None),  # not Ensure's answer
        (CHECK, "opsgate-os-user: created\n", None),
        (CHECK, "", None),  # a skipped step (not Linux)
        (CHECK, "opsgate-os-user: exists\nopsgate-os-user: missing\n", None),
    ],
)
def test_parse_result_takes_exactly_one_line_the_document_may_print(
    document, output, expected
):
    assert os_user_documents.parse_result(document=document, output=output) == (
        expected
    )


# --- The scripts, run by a shell ------------------------------------------------

SHIMS = {
    "getent": """
[ "$1" = passwd ] || exit 1
[ -n "${OSU_GETENT_RC:-}" ] && exit "$OSU_GETENT_RC"
grep "^$2:" "$OSU_DIR/passwd" && exit 0
exit 2
""",
    "useradd": """
echo "useradd $*" >> "$OSU_DIR/log"
echo "useradd says something on standard output"
for user; do :; done
if [ -n "${OSU_USERADD_RACE:-}" ]; then
  echo "$user:x:1002:1002::/home/$user:/bin/sh" >> "$OSU_DIR/passwd"
  echo "useradd: user '$user' already exists" >&2; exit 9
fi
if [ -n "${OSU_USERADD_FAIL:-}" ]; then
  echo "useradd: cannot lock /etc/passwd; try again later." >&2; exit 1
fi
echo "$user:x:1001:1001:opsgate run-as user:/home/$user:/bin/sh" >> "$OSU_DIR/passwd"
""",
    "usermod": """
echo "usermod $*" >> "$OSU_DIR/log"
""",
    "userdel": """
echo "userdel $*" >> "$OSU_DIR/log"
for user; do :; done
grep -v "^$user:" "$OSU_DIR/passwd" > "$OSU_DIR/passwd.new"
mv "$OSU_DIR/passwd.new" "$OSU_DIR/passwd"
""",
    "id": """
echo "${OSU_GROUPS:-$2}"
""",
    "sudo": """
for user; do :; done
if [ -n "${OSU_SUDOERS:-}" ]; then
  echo "User $user may run the following commands on web-1:"
  echo "    (ALL) ALL"
else
  echo "User $user is not allowed to run sudo on web-1."
fi
""",
}
SHELLS = [s for s in ("/bin/sh", "/bin/dash", "/bin/bash") if Path(s).exists()]


@pytest.fixture(params=sorted(set(map(lambda s: str(Path(s).resolve()), SHELLS))))
def instance(request, tmp_path):
    """An instance's shell with stand-in user tools and its own passwd file
    holding ec2-user and ssm-user."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in SHIMS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "passwd").write_text(
        "ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n"
        "ssm-user:x:1001:1001::/home/ssm-user:/bin/bash\n"
    )
    (tmp_path / "log").write_text("")
    tools = ":".join(
        sorted({str(Path(shutil.which(t)).parent) for t in ("grep", "mv", "cat")})
    )

    def run(document: str, user: str, **env: str) -> subprocess.CompletedProcess:
        steps = os_user_documents.documents()[document]["mainSteps"]
        script = "\n".join(steps[0]["inputs"]["runCommand"])
        # What SSM does with the parameter (after checking allowedPattern).
        (tmp_path / "_script.sh").write_text(script.replace("{{ UserName }}", user))
        return subprocess.run(
            [request.param, str(tmp_path / "_script.sh")],
            env={"PATH": f"{bin_dir}:{tools}", "OSU_DIR": str(tmp_path), **env},
            capture_output=True,
            text=True,
            timeout=30,
        )

    run.passwd = lambda: (tmp_path / "passwd").read_text()
    run.log = lambda: (tmp_path / "log").read_text().splitlines()
    return run


def test_check_says_exists_for_a_user_of_the_instance(instance):
    done = instance(CHECK, "ec2-user")
    assert (done.returncode, done.stdout) == (0, "opsgate-os-user: exists\n")


def test_check_says_missing_and_changes_nothing(instance):
    done = instance(CHECK, "deploy")
    assert (done.returncode, done.stdout) == (0, "opsgate-os-user: missing\n")
    assert "deploy" not in instance.passwd()
    assert instance.log() == []


def test_ensure_creates_a_locked_user_with_a_home_and_its_own_group(instance):
    done = instance(ENSURE, "deploy")
    assert (done.returncode, done.stdout) == (0, "opsgate-os-user: created\n")
    assert "useradd says something" in done.stderr  # not on standard output
    assert "\ndeploy:" in instance.passwd()
    useradd, usermod = instance.log()
    assert useradd.startswith("useradd --create-home --user-group --shell ")
    assert useradd.endswith("--comment opsgate run-as user deploy")
    assert usermod == "usermod --lock deploy"
    again = instance(ENSURE, "deploy")
    assert (again.returncode, again.stdout) == (0, "opsgate-os-user: exists\n")
    assert len(instance.log()) == 2  # nothing done the second time


def test_ensure_leaves_an_existing_user_as_it_is(instance):
    done = instance(ENSURE, "ec2-user", OSU_GROUPS="ec2-user wheel")
    assert (done.returncode, done.stdout) == (0, "opsgate-os-user: exists\n")
    assert instance.log() == []


def test_ensure_fails_when_useradd_fails(instance):
    done = instance(ENSURE, "deploy", OSU_USERADD_FAIL="1")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "cannot lock /etc/passwd" in done.stderr
    assert "opsgate: useradd failed" in done.stderr


def test_ensure_says_exists_when_another_run_created_the_user_first(instance):
    done = instance(ENSURE, "deploy", OSU_USERADD_RACE="1")
    assert (done.returncode, done.stdout) == (0, "opsgate-os-user: exists\n")


@pytest.mark.parametrize(
    "env",
    [
        {"OSU_GROUPS": "deploy wheel"},
        {"OSU_GROUPS": "deploy sudo"},
        {"OSU_GROUPS": "deploy root"},
        {"OSU_SUDOERS": "1"},
    ],
    ids=["wheel", "sudo", "root group", "sudoers rule"],
)
def test_a_new_user_that_could_use_sudo_is_removed_and_the_command_fails(instance, env):
    done = instance(ENSURE, "deploy", **env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "the user was removed again" in done.stderr
    assert instance.log()[-1] == "userdel --remove deploy"
    assert "deploy" not in instance.passwd()


REFUSED = [
    "root", "", "Deploy", "de ploy", "a;touch x", "-rf", "9lives", "a" * 33,
    "a\nb", "a$(id)", "a`id`", "a*",
]  # fmt: skip


@pytest.mark.parametrize("document", [CHECK, ENSURE])
@pytest.mark.parametrize("user", REFUSED)
def test_the_scripts_refuse_what_the_pattern_should_have_kept_out(
    instance, document, user
):
    """Were a document's pattern ever loosened: root and anything but a Linux
    user name still stop the script before any tool runs (values that break
    out of the quotes are for the pattern alone to keep out: see above)."""
    assert not os_user_documents.allowed(user)
    done = instance(document, user)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "opsgate: refused" in done.stderr
    assert instance.log() == []


@pytest.mark.parametrize("document", [CHECK, ENSURE])
def test_a_failing_user_lookup_fails_the_command(instance, document):
    done = instance(document, "deploy", OSU_GETENT_RC="1")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "getent passwd failed" in done.stderr
    assert instance.log() == []

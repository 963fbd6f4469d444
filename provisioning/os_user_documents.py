"""The two SSM Command documents opsgate runs on instances (issue 25): one
reads whether the OS run-as user of a grant exists, the other creates it.

opsgate runs nothing else on instances: its service policy allows
`ssm:SendCommand` on these two documents only, and only on instances tagged
with a project. The deployment creates them (`manage.py opsgate_boundaries
--apply`, or deploy/cloudformation/opsgate-os-user-documents.json), in every
region where an account's sessions run; deploy/ssm/ holds the reviewed copies.

The contract with provisioning.os_users (which sends them and reads the
result): one parameter, `UserName`; on success the command's standard output
holds exactly one line `opsgate-os-user: exists|created|missing`; anything
wrong is a non-zero exit (status Failed) with the reason on standard error.

Pure, like provisioning.policies: plain values in, dicts out.
"""

import re

CHECK = "opsgate-CheckOsUser"
ENSURE = "opsgate-EnsureOsUser"
NAMES = (CHECK, ENSURE)
PARAMETER = "UserName"
RESULT_PREFIX = "opsgate-os-user: "
EXISTS, CREATED, MISSING = "exists", "created", "missing"
RESULTS = {CHECK: (EXISTS, MISSING), ENSURE: (EXISTS, CREATED)}
PLATFORM = "Linux"
TAGS = [{"Key": "ManagedBy", "Value": "opsgate-deployment"}]

# opsgate's OS-user rule (accounts_app.validation.validate_os_user): a Linux
# user name, [a-z_][a-z0-9_-]{0,31}, never root. Spelled without a lookahead
# (SSM does not document its regular expression dialect; this one means the
# same in RE2, ECMAScript, Java and Python): any length but 4, or 4
# characters that are not r-o-o-t. The scripts refuse root again.
ALLOWED_PATTERN = (
    "^(?:[a-z_][a-z0-9_-]{0,2}"
    "|[a-z_][a-z0-9_-]{4,31}"
    "|[a-qs-z_][a-z0-9_-]{3}"
    "|r[a-np-z0-9_-][a-z0-9_-]{2}"
    "|ro[a-np-z0-9_-][a-z0-9_-]"
    "|roo[a-su-z0-9_-])$"
)
_ALLOWED = re.compile(ALLOWED_PATTERN, re.ASCII)

# SSM pastes the parameter into the script text ({{ UserName }}) after
# checking it against ALLOWED_PATTERN: no quote, space, $ or newline can get
# through, and the value is single-quoted anyway. The script checks it once
# more (a document edited by hand, a future pattern mistake) in the C locale,
# where [a-z] is only the 26 letters.
_PRELUDE = [
    "LC_ALL=C",
    "export LC_ALL",
    "user='{{ UserName }}'",
    'case "$user" in',
    "  root | '' | *[!a-z0-9_-]* | [!a-z_]*)",
    "    echo 'opsgate: refused: not an unprivileged Linux user name' >&2",
    "    exit 2 ;;",
    "esac",
    'if [ "${#user}" -gt 32 ]; then',
    "  echo 'opsgate: refused: a Linux user name has at most 32 characters' >&2",
    "  exit 2",
    "fi",
    "if ! command -v getent >/dev/null 2>&1; then",
    "  echo 'opsgate: getent is missing on this instance' >&2",
    "  exit 1",
    "fi",
    # getent: 0 found, 2 not found, anything else is a failure to look.
    "user_exists() {",
    '  getent passwd "$1" >/dev/null',
    "  case $? in",
    "    0) return 0 ;;",
    "    2) return 1 ;;",
    "    *) echo 'opsgate: getent passwd failed' >&2; exit 1 ;;",
    "  esac",
    "}",
]

_CHECK_SCRIPT = [
    *_PRELUDE,
    'if user_exists "$user"; then',
    f"  echo '{RESULT_PREFIX}{EXISTS}'",
    "else",
    f"  echo '{RESULT_PREFIX}{MISSING}'",
    "fi",
]

# An existing user is left as it is (it may be ec2-user, or one an
# administrator made on purpose). A new one: its own group (useradd fails
# rather than join an existing group of that name), a home directory, a
# locked password, no supplementary group; if it could still use sudo
# (a group or a sudoers rule naming it), it is removed again and the command
# fails. Every tool's own output goes to standard error: standard output
# carries the one result line.
_ENSURE_SCRIPT = [
    *_PRELUDE,
    'if user_exists "$user"; then',
    f"  echo '{RESULT_PREFIX}{EXISTS}'",
    "  exit 0",
    "fi",
    "for tool in useradd usermod userdel id; do",
    '  if ! command -v "$tool" >/dev/null 2>&1; then',
    '    echo "opsgate: $tool is missing on this instance (shadow-utils)" >&2',
    "    exit 1",
    "  fi",
    "done",
    "shell=/bin/bash",
    'if [ ! -x "$shell" ]; then shell=/bin/sh; fi',
    'if ! useradd --create-home --user-group --shell "$shell" \\',
    "    --comment 'opsgate run-as user' \"$user\" >&2; then",
    '  if user_exists "$user"; then',
    f"    echo '{RESULT_PREFIX}{EXISTS}'",
    "    exit 0",
    "  fi",
    "  echo 'opsgate: useradd failed' >&2",
    "  exit 1",
    "fi",
    "undo() {",
    '  echo "opsgate: $1; the user was removed again" >&2',
    '  userdel --remove "$user" >&2',
    "  exit 1",
    "}",
    'usermod --lock "$user" >&2 || undo "usermod --lock failed"',
    'for group in $(id -Gn "$user"); do',
    '  case "$group" in',
    '    root | wheel | sudo | admin) undo "it would be in the group $group" ;;',
    "  esac",
    "done",
    "if command -v sudo >/dev/null 2>&1 &&",
    '    sudo -n -l -U "$user" 2>/dev/null | grep -q "may run the following"; then',
    '  undo "a sudoers rule would let it use sudo"',
    "fi",
    f"echo '{RESULT_PREFIX}{CREATED}'",
]


def _document(*, description: str, step: str, script: list[str]) -> dict:
    return {
        "schemaVersion": "2.2",
        "description": description,
        "parameters": {
            PARAMETER: {
                "type": "String",
                "description": (
                    "The OS user: a Linux user name of at most 32 characters, "
                    "never root."
                ),
                "allowedPattern": ALLOWED_PATTERN,
            }
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": step,
                "precondition": {"StringEquals": ["platformType", PLATFORM]},
                "inputs": {"runCommand": list(script)},
            }
        ],
    }


def check_document() -> dict:
    return _document(
        description=(
            "opsgate: does the OS user exist on this instance? Read-only. "
            f"Prints '{RESULT_PREFIX}{EXISTS}' or '{RESULT_PREFIX}{MISSING}'."
        ),
        step="checkOsUser",
        script=_CHECK_SCRIPT,
    )


def ensure_document() -> dict:
    return _document(
        description=(
            "opsgate: create the OS user when it does not exist: a locked local "
            "user with a home directory, no password and no sudo. An existing "
            f"user is left as it is. Prints '{RESULT_PREFIX}{EXISTS}' or "
            f"'{RESULT_PREFIX}{CREATED}'."
        ),
        step="ensureOsUser",
        script=_ENSURE_SCRIPT,
    )


def documents() -> dict[str, dict]:
    """Both documents' contents, by document name."""
    return {CHECK: check_document(), ENSURE: ensure_document()}


def step_name(document: dict) -> str:
    """The plugin name GetCommandInvocation answers for (the one step)."""
    return document["mainSteps"][0]["name"]


def allowed(user_name: str) -> bool:
    """Whether SSM lets `user_name` through the documents' allowedPattern."""
    return bool(_ALLOWED.fullmatch(user_name))


def document_arn(
    *, account_id: str, name: str, region: str = "*", partition: str = "aws"
) -> str:
    return f"arn:{partition}:ssm:{region}:{account_id}:document/{name}"


def parse_result(*, document: str, output: str) -> str | None:
    """The result word in a command's standard output ("exists", "created",
    "missing"), or None when the output does not hold exactly one result
    line allowed for `document` (then the command did not do its job)."""
    lines = [line.strip() for line in output.splitlines()]
    found = [
        line[len(RESULT_PREFIX) :] for line in lines if line.startswith(RESULT_PREFIX)
    ]
    if len(found) != 1 or found[0] not in RESULTS[document]:
        return None
    return found[0]


# --- CloudFormation -----------------------------------------------------------

TEMPLATE = "deploy/cloudformation/opsgate-os-user-documents.json"
_RESOURCES = {CHECK: "CheckOsUserDocument", ENSURE: "EnsureOsUserDocument"}


def cloudformation_template() -> dict:
    """Both documents as a stack. SSM documents live in a region (IAM is
    global): deploy it in every region where an account's sessions run, e.g.
    a StackSet over the accounts and their regions."""
    resources = {
        _RESOURCES[name]: {
            "Type": "AWS::SSM::Document",
            "Properties": {
                "Name": name,
                "DocumentType": "Command",
                "DocumentFormat": "JSON",
                # A named document cannot be replaced; a new content is a new
                # version, made the default.
                "UpdateMethod": "NewVersion",
                "Content": content,
                "Tags": list(TAGS),
            },
        }
        for name, content in documents().items()
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "opsgate's two SSM Command documents: opsgate-CheckOsUser reads "
            "whether a grant's OS run-as user exists on an instance, "
            "opsgate-EnsureOsUser creates it (locked, home directory, no sudo). "
            "opsgate may run these and no other document. Deploy in every "
            "region where sessions run. Generated by "
            "`manage.py opsgate_boundaries --ssm-cloudformation`."
        ),
        "Resources": resources,
        "Outputs": {
            f"{resource}Name": {"Value": {"Ref": resource}}
            for resource in _RESOURCES.values()
        },
    }

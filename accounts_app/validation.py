"""Input rules of DESIGN §5, in one place for forms, services and the import.

moto accepts almost anything, so these checks are the only line of defence
before a name, tag or principal reaches AWS. Each validator raises Django's
ValidationError with a message that says what is allowed.
"""

import re
import unicodedata

from django.core.exceptions import ValidationError

IAM_NAME_CHARS = "letters A-Z and a-z, digits and _+=.@-"
_IAM_USER_NAME = re.compile(r"[A-Za-z0-9_+=.@-]{1,64}", re.ASCII)
_IAM_ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}", re.ASCII)
_OS_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
_PRINCIPAL_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::(?P<account>\d{12}):user"
    r"(?P<path>/(?:[A-Za-z0-9_+=,.@-]+/)*)(?P<name>[A-Za-z0-9_+=,.@-]{1,64})",
    re.ASCII,
)
_TAG_VALUE_SYMBOLS = set("_.:/=+-@")
OS_USERS_FORBIDDEN = {"root"}


def _blank_edges(value: str) -> bool:
    return value != value.strip()


def validate_iam_user_name(value: str) -> None:
    if _blank_edges(value):
        raise ValidationError("Remove the spaces at the start or end.", code="blank")
    if not value:
        raise ValidationError("Enter an IAM user name.", code="required")
    if "," in value:
        raise ValidationError(
            "Commas are not allowed: they break SSM session tags.", code="comma"
        )
    if len(value) > 64:
        raise ValidationError(
            f"At most 64 characters (this one has {len(value)}).", code="length"
        )
    if not _IAM_USER_NAME.fullmatch(value):
        raise ValidationError(
            f"Use only {IAM_NAME_CHARS}; no spaces or other letters.",
            code="chars",
        )


def validate_iam_role_name(value: str, *, path: str = "/") -> None:
    if _blank_edges(value):
        raise ValidationError("Remove the spaces at the start or end.", code="blank")
    if not value:
        raise ValidationError("Enter a role name.", code="required")
    limit = 64 - len(path) + 1  # the console's Switch Role takes path + name <= 64
    if len(value) > min(64, limit):
        raise ValidationError(
            f"At most {min(64, limit)} characters with the path {path} "
            f"(this one has {len(value)}).",
            code="length",
        )
    if not _IAM_ROLE_NAME.fullmatch(value):
        raise ValidationError(
            f"Use only {IAM_NAME_CHARS} and commas; no spaces or other letters.",
            code="chars",
        )


def validate_tag_value(value: str, *, what: str = "The value") -> None:
    """An IAM tag value as opsgate accepts it: letters of any script, digits,
    spaces and _.:/=+-@, 1 to 256 characters, not starting with aws:."""
    if not value or not value.strip():
        raise ValidationError(f"{what} is required.", code="required")
    if _blank_edges(value):
        raise ValidationError("Remove the spaces at the start or end.", code="blank")
    if len(value) > 256:
        raise ValidationError(
            f"At most 256 characters (this one has {len(value)}).", code="length"
        )
    if value.lower().startswith("aws:"):
        raise ValidationError(
            f"{what} cannot start with 'aws:' (reserved by AWS).", code="reserved"
        )
    bad = sorted(
        {
            ch
            for ch in value
            if not (
                ch in _TAG_VALUE_SYMBOLS
                or ch == " "
                or unicodedata.category(ch)[0] in "LN"
                or unicodedata.category(ch) == "Zs"
            )
        }
    )
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise ValidationError(
            f"{what} may hold letters, digits, spaces and _ . : / = + - @ only; "
            f"remove {shown}.",
            code="chars",
        )


def validate_project_name(value: str) -> None:
    validate_tag_value(value, what="A project name")


def validate_os_user(value: str) -> None:
    if value in OS_USERS_FORBIDDEN:
        raise ValidationError(
            "root is not allowed: pick an unprivileged OS user.", code="root"
        )
    if len(value) > 32:
        raise ValidationError(
            f"At most 32 characters (this one has {len(value)}).", code="length"
        )
    if not _OS_USER.fullmatch(value):
        raise ValidationError(
            "Use a Linux user name: lowercase letters, digits, _ and -, "
            "starting with a letter or _.",
            code="chars",
        )


def validate_principal_arn(value: str) -> None:
    """Cross-account principals: exactly one IAM user, never a wildcard,
    an account root, a role or an STS session."""
    match = _PRINCIPAL_ARN.fullmatch(value)
    if not match:
        raise ValidationError(
            "Give an IAM user ARN such as arn:aws:iam::111122223333:user/alice "
            "(no wildcards, roles, sessions or account roots).",
            code="arn",
        )


_ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)
_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-cn|-us-gov)?):iam::(?P<account>\d{12}):role"
    r"(?:/[A-Za-z0-9_+=,.@-]+)*/(?P<name>[A-Za-z0-9_+=,.@-]{1,64})",
    re.ASCII,
)
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:/-]{2,1224}", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}", re.ASCII)
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def validate_account_id(value: str) -> None:
    if not _ACCOUNT_ID.fullmatch(value or ""):
        raise ValidationError(
            "An AWS account id has exactly 12 digits, such as 111122223333.",
            code="account_id",
        )


def validate_provisioner_role_arn(
    value: str, *, account_id: str, partition: str = "aws"
) -> None:
    """The role opsgate assumes to reach an account: a role of that account."""
    match = _ROLE_ARN.fullmatch(value)
    if not match:
        raise ValidationError(
            "Give an IAM role ARN such as "
            "arn:aws:iam::111122223333:role/opsgate-provisioner.",
            code="arn",
        )
    if match["account"] != account_id:
        raise ValidationError(
            f"This role is in account {match['account']}, not {account_id}: "
            "give the provisioner role of this account.",
            code="arn_account",
        )
    if match["partition"] != partition:
        raise ValidationError(
            f"This role is in partition {match['partition']}, not {partition}.",
            code="arn_partition",
        )


def validate_external_id(value: str) -> None:
    if not _EXTERNAL_ID.fullmatch(value):
        raise ValidationError(
            "An external id has 2 to 1,224 characters: letters, digits and _+=,.@:/-.",
            code="external_id",
        )


def validate_regions(values: list[str]) -> None:
    for value in values:
        if not _REGION.fullmatch(value):
            raise ValidationError(
                f"{value!r} is not an AWS region name such as eu-west-1.",
                code="region",
            )


def validate_email(value: str) -> None:
    from django.core.validators import validate_email as django_validate_email

    django_validate_email(value)
    validate_tag_value(value, what="The e-mail address")


def first_message(error: ValidationError) -> str:
    return error.messages[0] if error.messages else str(error)


def field_error(field: str, error: ValidationError | str) -> ValidationError:
    """A service's error keyed by the form field it is about."""
    message = error if isinstance(error, str) else first_message(error)
    return ValidationError({field: message})


def check_field(field: str, validator, value) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise field_error(field, exc) from None

"""Each input rule pinned on its own: one forbidden character per case, both
sides of every length limit, every partition.

The table-driven tests in test_validation.py show that typical bad input is
refused; these show that no single part of a rule can be dropped without a
test noticing (measured with scripts/mutation.sh).
"""

import string

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from accounts_app import validation

ASCII_PRINTABLE = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
IAM_USER_CHARS = set(string.ascii_letters + string.digits + "_+=.@-")
OS_USER_REST = set(string.ascii_lowercase + string.digits + "_-")
OS_USER_FIRST = set(string.ascii_lowercase + "_")
TAG_SYMBOLS = set("_.:/=+-@")
# Letters and digits of other scripts, and digits Python's isdigit() accepts.
NON_ASCII = ["é", "а", "ß", "²", "٣", "௫", "Ⅻ", "ｆ", "\u00a0", "\u200b"]


def _code(validator, value, **kwargs) -> str | None:
    try:
        validator(value, **kwargs)
    except ValidationError as exc:
        return exc.code
    return None


# --- IAM user names -----------------------------------------------------------


@pytest.mark.parametrize(
    "ch", sorted(set(ASCII_PRINTABLE) - IAM_USER_CHARS - {","}) + NON_ASCII
)
def test_each_character_outside_the_iam_user_name_set_is_refused(ch):
    assert _code(validation.validate_iam_user_name, f"ab{ch}cd") == "chars"


@pytest.mark.parametrize("ch", sorted(IAM_USER_CHARS))
def test_each_character_of_the_iam_user_name_set_is_accepted(ch):
    assert _code(validation.validate_iam_user_name, f"ab{ch}cd") is None


def test_a_comma_in_a_user_name_has_its_own_reason():
    assert _code(validation.validate_iam_user_name, "a,b") == "comma"


def test_iam_user_names_are_limited_to_64_characters():
    assert _code(validation.validate_iam_user_name, "u" * 64) is None
    assert _code(validation.validate_iam_user_name, "u" * 65) == "length"


@given(st.from_regex(r"\A[A-Za-z0-9_+=.@-]{1,64}\Z"))
def test_every_name_of_the_allowed_shape_is_accepted(name):
    validation.validate_iam_user_name(name)


# --- Role names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit"), [("/", 64), ("/opsgate/", 56), ("/a/b/", 60)]
)
def test_role_names_fit_the_switch_role_limit_with_their_path(path, limit):
    assert _code(validation.validate_iam_role_name, "r" * limit, path=path) is None
    assert (
        _code(validation.validate_iam_role_name, "r" * (limit + 1), path=path)
        == "length"
    )


def test_role_names_allow_commas_but_nothing_else_outside_the_set():
    assert _code(validation.validate_iam_role_name, "a,b") is None
    for ch in sorted(set(ASCII_PRINTABLE) - IAM_USER_CHARS - {","}) + NON_ASCII:
        assert _code(validation.validate_iam_role_name, f"a{ch}b") == "chars", ch


@pytest.mark.parametrize(
    ("value", "code"), [("", "required"), (" r", "blank"), ("r ", "blank")]
)
def test_role_names_empty_or_with_blank_edges_are_refused(value, code):
    assert _code(validation.validate_iam_role_name, value) == code


# --- OS users (they become the SSMSessionRunAs tag) ---------------------------


@pytest.mark.parametrize("ch", sorted(set(ASCII_PRINTABLE) - OS_USER_REST) + NON_ASCII)
def test_each_character_outside_the_os_user_set_is_refused(ch):
    assert _code(validation.validate_os_user, f"ab{ch}cd") == "chars"


@pytest.mark.parametrize("ch", sorted(OS_USER_REST))
def test_each_character_of_the_os_user_set_is_accepted_after_the_first(ch):
    assert _code(validation.validate_os_user, f"a{ch}") is None


@pytest.mark.parametrize("ch", sorted(OS_USER_REST - OS_USER_FIRST))
def test_os_users_cannot_start_with_a_digit_or_dash(ch):
    assert _code(validation.validate_os_user, f"{ch}abc") == "chars"


def test_os_users_may_start_with_a_letter_or_underscore():
    assert _code(validation.validate_os_user, "_svc") is None
    assert _code(validation.validate_os_user, "z") is None


def test_os_users_are_limited_to_32_characters():
    assert _code(validation.validate_os_user, "o" * 32) is None
    assert _code(validation.validate_os_user, "o" * 33) == "length"


def test_only_root_itself_is_refused_as_root():
    assert _code(validation.validate_os_user, "root") == "root"
    assert _code(validation.validate_os_user, "rooty") is None
    assert _code(validation.validate_os_user, "_root") is None


@given(st.from_regex(r"\A[a-z_][a-z0-9_-]{0,31}\Z").filter(lambda v: v != "root"))
def test_every_os_user_of_the_allowed_shape_is_accepted(value):
    validation.validate_os_user(value)


# --- Tag values (project names, e-mail addresses) -----------------------------


@pytest.mark.parametrize(
    "ch", sorted(set(string.punctuation) - TAG_SYMBOLS) + ["\t", "\n", "\u200b"]
)
def test_each_symbol_outside_the_tag_value_set_is_refused(ch):
    assert _code(validation.validate_tag_value, f"ab{ch}cd") == "chars"


@pytest.mark.parametrize("ch", sorted(TAG_SYMBOLS) + [" ", "é", "決", "٣", "\u00a0"])
def test_tag_values_accept_the_symbols_letters_digits_and_spaces(ch):
    assert _code(validation.validate_tag_value, f"ab{ch}cd") is None


def test_tag_values_are_limited_to_256_characters():
    assert _code(validation.validate_tag_value, "t" * 256) is None
    assert _code(validation.validate_tag_value, "t" * 257) == "length"


@pytest.mark.parametrize("value", ["aws:x", "AWS:x", "Aws:x", "aws:"])
def test_tag_values_starting_with_aws_colon_are_reserved(value):
    assert _code(validation.validate_tag_value, value) == "reserved"


@pytest.mark.parametrize("value", ["awsx", "my aws:x", "aws-x"])
def test_aws_elsewhere_in_a_tag_value_is_fine(value):
    assert _code(validation.validate_tag_value, value) is None


@pytest.mark.parametrize(
    ("value", "code"),
    [("", "required"), ("  ", "required"), (" x", "blank"), ("x ", "blank")],
)
def test_tag_values_empty_or_with_blank_edges_are_refused(value, code):
    assert _code(validation.validate_tag_value, value) == code


def test_the_refusal_names_the_field_and_the_characters_to_remove():
    with pytest.raises(ValidationError) as info:
        validation.validate_tag_value("a*b?", what="A project name")
    message = info.value.messages[0]
    assert message.startswith("A project name may hold")
    assert "'*'" in message and "'?'" in message


def test_an_email_address_django_accepts_but_iam_tags_refuse_is_refused():
    # Django's validator allows these in the local part; IAM tag values do not.
    for address in ["a!b@example.com", "a#b@example.com", "a*b@example.com"]:
        with pytest.raises(ValidationError) as info:
            validation.validate_email(address)
        assert info.value.code == "chars", address
    validation.validate_email("first.last+ops@example.com")


def test_an_address_that_is_no_email_is_refused():
    with pytest.raises(ValidationError):
        validation.validate_email("not-an-address")


# --- Cross-account principal ARNs ---------------------------------------------


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_principal_arns_are_accepted_in_each_partition(partition):
    validation.validate_principal_arn(f"arn:{partition}:iam::111122223333:user/alice")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws-iso:iam::111122223333:user/alice",
        "arn:aws-cnx:iam::111122223333:user/alice",
        "arn::iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:user/*/alice",
        "arn:aws:iam::111122223333:user/a?b/alice",
        "arn:aws:iam::111122223333:user/team//alice",
        "arn:aws:iam::111122223333:user/team/",
        "arn:aws:iam::111122223333:user/",
        "arn:aws:iam::11112222333²:user/alice",
        "arn:aws:iam::١١١١٢٢٢٢٣٣٣٣:user/alice",
        "arn:aws:iam::111122223333:user/" + "a" * 65,
        "arn:aws:iam::111122223333:userx/alice",
        "arn:aws:iam::111122223333:group/alice",
        "xarn:aws:iam::111122223333:user/alice",
    ],
)
def test_principal_arns_refused_part_by_part(arn):
    with pytest.raises(ValidationError) as info:
        validation.validate_principal_arn(arn)
    assert info.value.code == "arn"


def test_principal_arns_with_a_path_and_a_64_character_name_are_accepted():
    validation.validate_principal_arn(
        "arn:aws:iam::111122223333:user/team/ops/" + "a" * 64
    )
    validation.validate_principal_arn("arn:aws:iam::111122223333:user/a,b=c+d@e.f-g_h")


def test_first_message_gives_the_first_text_of_an_error():
    assert validation.first_message(ValidationError(["one", "two"])) == "one"
    assert validation.first_message(ValidationError("only")) == "only"


# --- every refusal says what to do --------------------------------------------

REFUSALS = [
    (validation.validate_iam_user_name, " alice"),
    (validation.validate_iam_user_name, ""),
    (validation.validate_iam_user_name, "a,b"),
    (validation.validate_iam_user_name, "a" * 65),
    (validation.validate_iam_user_name, "a b"),
    (validation.validate_iam_role_name, " r"),
    (validation.validate_iam_role_name, ""),
    (validation.validate_iam_role_name, "r" * 65),
    (validation.validate_iam_role_name, "r b"),
    (validation.validate_tag_value, ""),
    (validation.validate_tag_value, " t"),
    (validation.validate_tag_value, "t" * 257),
    (validation.validate_tag_value, "aws:t"),
    (validation.validate_tag_value, "t*"),
    (validation.validate_os_user, "root"),
    (validation.validate_os_user, "o" * 33),
    (validation.validate_os_user, "O"),
    (validation.validate_principal_arn, "*"),
]


@pytest.mark.parametrize(("validator", "value"), REFUSALS)
def test_every_refusal_carries_a_sentence(validator, value):
    with pytest.raises(ValidationError) as info:
        validator(value)
    (message,) = info.value.messages
    assert isinstance(message, str) and message != "None"
    assert len(message.split()) >= 3, message


@pytest.mark.parametrize(
    ("validator", "value", "start"),
    [
        (validation.validate_project_name, "", "A project name is required."),
        (validation.validate_project_name, "aws:x", "A project name cannot start"),
        (validation.validate_project_name, "p*", "A project name may hold"),
        (validation.validate_email, "a!b@example.com", "The e-mail address may hold"),
        (validation.validate_tag_value, "", "The value is required."),
    ],
)
def test_tag_value_refusals_name_the_field(validator, value, start):
    with pytest.raises(ValidationError) as info:
        validator(value)
    assert info.value.messages[0].startswith(start)


def test_length_refusals_say_how_long_the_value_is():
    with pytest.raises(
        ValidationError, match=r"At most 64 characters \(this one has 65\)"
    ):
        validation.validate_iam_user_name("a" * 65)
    with pytest.raises(
        ValidationError,
        match=r"At most 56 characters with the path /opsgate/ "
        r"\(this one has 57\)",
    ):
        validation.validate_iam_role_name("r" * 57, path="/opsgate/")

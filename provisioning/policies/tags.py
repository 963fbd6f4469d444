"""The tags opsgate writes and reads: its own keys (reserved), and the tag
sets of users and roles."""

MANAGED_BY_KEY = "ManagedBy"
MANAGED_BY_VALUE = "opsgate"
PROJECT_KEY = "Project"
RUN_AS_KEY = "SSMSessionRunAs"
EMAIL_KEY = "E-mail Address"  # the CDK stack's key, spaces included
RESERVED_TAG_KEYS = (PROJECT_KEY, RUN_AS_KEY, MANAGED_BY_KEY, EMAIL_KEY)
RESERVED_TAG_PREFIX = "opsgate"


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def user_tags(*, email: str = "") -> list[dict[str, str]]:
    pairs = {MANAGED_BY_KEY: MANAGED_BY_VALUE}
    if email:
        pairs[EMAIL_KEY] = email
    return _tags(pairs)


def role_tags(*, project: str, os_user: str) -> list[dict[str, str]]:
    return _tags(
        {PROJECT_KEY: project, RUN_AS_KEY: os_user, MANAGED_BY_KEY: MANAGED_BY_VALUE}
    )


def managed_tags() -> list[dict[str, str]]:
    return _tags({MANAGED_BY_KEY: MANAGED_BY_VALUE})


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def is_managed(tags: list[dict[str, str]] | None) -> bool:
    return tag_dict(tags).get(MANAGED_BY_KEY) == MANAGED_BY_VALUE

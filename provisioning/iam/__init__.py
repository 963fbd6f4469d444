"""Converging IAM steps: each makes one AWS object match a document and is safe
to run again. Reads first, writes only what differs, and never touches an
object that is not opsgate's (path and ManagedBy=opsgate tag).

  account   opsgate's managed policies, the operators group, the quotas;
  users     IAM users: made, disabled, deleted;
  roles     operation roles and their inline policies: made, closed, deleted;
  removals  what reconcile takes away (tags, policies);
  common    what the steps share (error codes, documents, ownership, tags).
"""

from provisioning.iam.account import (
    account_summary,
    ensure_group,
    ensure_managed_policy,
    group_exists,
    policy_exists,
)
from provisioning.iam.common import (
    ALREADY_EXISTS,
    DELETE_CONFLICT,
    MAX_POLICY_VERSIONS,
    NO_SUCH_ENTITY,
    ROLE_TAG_KEYS,
    USER_TAG_KEYS,
    parse_document,
)
from provisioning.iam.removals import remove_policies, untag
from provisioning.iam.roles import (
    delete_role,
    ensure_role,
    ensure_role_inline_policy,
    role_close,
    role_get,
)
from provisioning.iam.users import delete_user, disable_user, ensure_user, user_exists

__all__ = [
    "ALREADY_EXISTS",
    "DELETE_CONFLICT",
    "MAX_POLICY_VERSIONS",
    "NO_SUCH_ENTITY",
    "ROLE_TAG_KEYS",
    "USER_TAG_KEYS",
    "account_summary",
    "delete_role",
    "delete_user",
    "disable_user",
    "ensure_group",
    "ensure_managed_policy",
    "ensure_role",
    "ensure_role_inline_policy",
    "ensure_user",
    "group_exists",
    "parse_document",
    "policy_exists",
    "remove_policies",
    "role_close",
    "role_get",
    "untag",
    "user_exists",
]

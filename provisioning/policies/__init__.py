"""The IAM documents and tag sets opsgate writes (DESIGN §1).

Pure functions: plain values in, dicts out. No ORM, no boto3, no settings.
Documents are built as dicts and serialised with json.dumps, so user input
never becomes JSON text; project names reach AWS only as tag values.

  core        the statement list, ARNs, comparing and sizing documents;
  tags        opsgate's tag keys and the tag sets of users and roles;
  group       the operators group's policies (self-service with MFA);
  roles       an operation role's permissions (SSM, EC2 on its project);
  trust       who may assume a role, and the deny of ended sessions;
  boundaries  the permissions boundaries of what opsgate creates.
"""

from provisioning.policies.boundaries import (
    ROLE_BOUNDARY_ACTIONS,
    role_boundary_policy,
    user_boundary_policy,
)
from provisioning.policies.core import (
    VERSION,
    Document,
    aws_managed_policy_arn,
    canonical,
    minified,
    policy_arn,
    role_arn,
    same_document,
    user_arn,
)
from provisioning.policies.group import (
    ACCESS_KEY_SELF_SERVICE_ACTIONS,
    AWS_MANAGED_GROUP_POLICY,
    MFA_SELF_SERVICE_ACTIONS,
    SERVICE_CREDENTIAL_SELF_SERVICE_ACTIONS,
    TAG_SELF_SERVICE_ACTIONS,
    assume_role_policy,
    enforce_mfa_policy,
    group_policies,
    self_access_keys_policy,
    self_tags_policy,
)
from provisioning.policies.roles import (
    ec2_start_stop_policy,
    role_policies,
    ssm_session_manager_policy,
)
from provisioning.policies.tags import (
    EMAIL_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    PROJECT_KEY,
    RESERVED_TAG_KEYS,
    RESERVED_TAG_PREFIX,
    RUN_AS_KEY,
    is_managed,
    managed_tags,
    role_tags,
    tag_dict,
    user_tags,
)
from provisioning.policies.trust import (
    ROLE_INLINE_POLICY_QUOTA,
    assumed_role_session_arn,
    iso8601,
    revoked_sessions_policy,
    trust_nobody_policy,
    trust_policy,
    trust_policy_size,
)

__all__ = [
    "ACCESS_KEY_SELF_SERVICE_ACTIONS",
    "AWS_MANAGED_GROUP_POLICY",
    "Document",
    "EMAIL_KEY",
    "MANAGED_BY_KEY",
    "MANAGED_BY_VALUE",
    "MFA_SELF_SERVICE_ACTIONS",
    "PROJECT_KEY",
    "RESERVED_TAG_KEYS",
    "RESERVED_TAG_PREFIX",
    "ROLE_BOUNDARY_ACTIONS",
    "ROLE_INLINE_POLICY_QUOTA",
    "RUN_AS_KEY",
    "SERVICE_CREDENTIAL_SELF_SERVICE_ACTIONS",
    "TAG_SELF_SERVICE_ACTIONS",
    "VERSION",
    "assume_role_policy",
    "assumed_role_session_arn",
    "aws_managed_policy_arn",
    "canonical",
    "ec2_start_stop_policy",
    "enforce_mfa_policy",
    "group_policies",
    "is_managed",
    "iso8601",
    "managed_tags",
    "minified",
    "policy_arn",
    "revoked_sessions_policy",
    "role_arn",
    "role_boundary_policy",
    "role_policies",
    "role_tags",
    "same_document",
    "self_access_keys_policy",
    "self_tags_policy",
    "ssm_session_manager_policy",
    "tag_dict",
    "trust_nobody_policy",
    "trust_policy",
    "trust_policy_size",
    "user_arn",
    "user_boundary_policy",
    "user_tags",
]

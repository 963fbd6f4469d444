"""Is a grant usable? Read back what AWS holds, not what the database says
(issue 25): "Active" means the trust was written; "Ready" means the person can
get in.

The checks, each with what to do when it fails:
- the person's IAM user exists, is in the operators group and has an MFA
  device (without one the group denies everything and the trust refuses):
  `user`;
- the role (GetRole) trusts the person with the MFA and session-name
  conditions of provisioning.policies.trust_policy, has its tags, policies
  and permissions boundary: `role`;
- the project's instances in the role's account and session regions:
  online in SSM (DescribeInstanceInformation) and holding the OS run-as user
  (provisioning.os_users; created there when the project opted in):
  `instances`;
- with OPSGATE_READINESS_SIMULATE, iam:SimulatePrincipalPolicy as the final
  answer: `simulate`.

A check that may fail only because IAM has not propagated a change yet says
so (`propagating`); the task retries those for READINESS_PROPAGATION_SECONDS
before the result is recorded (`runner`; provisioning.tasks.check_readiness).
What a check is made of lives in `checks`.
"""

from provisioning.readiness.checks import (
    NO_OS_USER,
    NOT_MANAGED,
    OFFLINE,
    READY,
    Check,
    Outcome,
)
from provisioning.readiness.instances import (
    instance_rows,
    instances_check,
    ping_status,
)
from provisioning.readiness.role import role_checks
from provisioning.readiness.runner import (
    changed_at,
    check_grant,
    grant_readiness_run,
    grants_readiness_run,
    retry_in,
)
from provisioning.readiness.simulate import instance_arn, simulate_check
from provisioning.readiness.user import mfa_console_link, user_checks

__all__ = [
    "NO_OS_USER",
    "NOT_MANAGED",
    "OFFLINE",
    "READY",
    "Check",
    "Outcome",
    "changed_at",
    "check_grant",
    "grant_readiness_run",
    "grants_readiness_run",
    "instance_arn",
    "instance_rows",
    "instances_check",
    "mfa_console_link",
    "ping_status",
    "retry_in",
    "role_checks",
    "simulate_check",
    "user_checks",
]

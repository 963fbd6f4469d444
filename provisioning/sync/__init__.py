"""Make AWS match the database, one object at a time (DESIGN §4).

Each function is keyed by id and reads the desired state when it runs, so
running it twice, late or out of order is harmless. Work on one object is
serialised by a row lock held while AWS is written.

By what is converged:
  accounts  an account's baseline (managed policies, the operators group) and
            its repair when AWS lost it;
  users     a person's IAM user, made while they are active and removed when
            they are offboarded (iam_user: creating or fixing one);
  roles     an operation role: its grants re-checked, its users made, then
  ending    the role converged in AWS, ending access first (deny, trust, SSM)
  sessions  with the SSM step of ending there;
  outcomes  what every sync records on its object (applied version, error).
"""

from provisioning.sync.accounts import (
    BOUNDARY_MISSING,
    account_baseline_check,
    account_baseline_sync,
    read_trust_policy_quota,
)
from provisioning.sync.ending import (
    TRUST_WRITE_ALLOWANCE,
    revoked_sessions_policy_name,
    role_description,
)
from provisioning.sync.roles import role_sync
from provisioning.sync.sessions import StepWaits
from provisioning.sync.users import iam_user_sync

__all__ = [
    "BOUNDARY_MISSING",
    "TRUST_WRITE_ALLOWANCE",
    "StepWaits",
    "account_baseline_check",
    "account_baseline_sync",
    "iam_user_sync",
    "read_trust_policy_quota",
    "revoked_sessions_policy_name",
    "role_description",
    "role_sync",
]

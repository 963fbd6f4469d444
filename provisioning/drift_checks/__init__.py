"""Reconcile's reading and comparing: one paginated
GetAccountAuthorizationDetails reads every user, group, role and
customer-managed policy of an account; each object opsgate owns is compared
with the database into Findings (provisioning.reconcile records and repairs
them). Objects changed or synced within OPSGATE_RECONCILE_QUIET_SECONDS are
left alone: IAM reads are eventually consistent, and the worker is on them.

  reading   the account's objects, which are opsgate's, which too recent;
  findings  Finding and Report, and what reconcile reads from them;
  compare   tags, attached policies and boundaries, for every kind;
  account   the baseline (policies, group, boundaries), unknown objects;
  users     IAM users;
  roles     operation roles and their trust.
"""

from provisioning.drift_checks.account import check_baseline, check_unknown
from provisioning.drift_checks.findings import (
    Finding,
    Report,
    note_missing_roles,
    stopped_without_drift,
)
from provisioning.drift_checks.reading import GAAD_FILTER, quiet, read_account
from provisioning.drift_checks.roles import check_roles
from provisioning.drift_checks.users import check_users

__all__ = [
    "Finding",
    "GAAD_FILTER",
    "Report",
    "check_baseline",
    "check_roles",
    "check_unknown",
    "check_users",
    "note_missing_roles",
    "quiet",
    "read_account",
    "stopped_without_drift",
]

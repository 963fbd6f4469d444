"""The one place that imports boto3: clients built on demand, errors mapped once.

boto3 finds its endpoint the standard way, so AWS_ENDPOINT_URL pointing at moto
(or LocalStack) is configuration, not a code path. Clients are never built at
import time.

  errors   the error classes and the AWS codes of each;
  clients  clients per thread and account, errors mapped (classify,
           aws_action), the account opsgate acts in;
  observe  counting the calls made (tests, benchmarks).
"""

from provisioning.aws.clients import (
    REFRESH_MARGIN,
    account_identity,
    aws_action,
    caller_account_id,
    classify,
    client,
    forget_clients,
    own_account_id,
    reset_clients,
)
from provisioning.aws.errors import (
    CREDENTIAL_CODES,
    DEPENDENCY_ACTIONS,
    EXPIRED_CODES,
    RETRYABLE_CODES,
    THROTTLING_CODES,
    AwsError,
    DependencyMissing,
    PermanentError,
    RetryLater,
    error_code,
)
from provisioning.aws.observe import WRITE_PREFIXES, is_write, observe_calls

__all__ = [
    "AwsError",
    "CREDENTIAL_CODES",
    "DEPENDENCY_ACTIONS",
    "DependencyMissing",
    "EXPIRED_CODES",
    "PermanentError",
    "REFRESH_MARGIN",
    "RETRYABLE_CODES",
    "RetryLater",
    "THROTTLING_CODES",
    "WRITE_PREFIXES",
    "account_identity",
    "aws_action",
    "caller_account_id",
    "classify",
    "client",
    "error_code",
    "forget_clients",
    "is_write",
    "observe_calls",
    "own_account_id",
    "reset_clients",
]

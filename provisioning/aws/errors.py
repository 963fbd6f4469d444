"""What a failed AWS call means to opsgate: the error classes (retry later,
permanent, a dependency missing) and the AWS error codes of each."""

from botocore.exceptions import ClientError

# AWS asking to slow down (provisioning.throttle backs the account off).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)
RETRYABLE_CODES = THROTTLING_CODES | {
    "ServiceUnavailable",
    "ServiceFailure",
    "ServiceFailureException",
    "InternalFailure",
    "InternalError",
    "ConcurrentModification",
    "ConcurrentModificationException",
}
# Temporary credentials that ran out (an assumed role's, or a request signed
# too long ago): drop the cached clients and retry with fresh ones (issue 21;
# they were treated as permanent).
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}


class AwsError(Exception):
    """An AWS call failed. `message` is safe to show: it names the action and the
    error code and never carries credentials."""

    def __init__(self, message: str, *, action: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        self.code = code


class RetryLater(AwsError):
    """Transient: throttling, 5xx, eventual consistency. Try again with backoff."""


class PermanentError(AwsError):
    """Will fail again until a person changes something: record, show, stop."""


class DependencyMissing(RetryLater):
    """NoSuchEntity on a call that names another object opsgate made (a managed
    policy, the operators group, the permissions boundary): the account's
    baseline, or part of it, is gone (an account wiped, a sandbox restored) or
    not visible yet. The sync repairs the baseline and tries once more; after
    that it is an ordinary "retry later"."""


# Calls whose NoSuchEntity means "what this names is missing", not "this
# object is missing": the object itself is always read first.
DEPENDENCY_ACTIONS = {
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:AddUserToGroup",
    "iam:PutRolePermissionsBoundary",
    "iam:CreateRole",  # its permissions boundary
}


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")

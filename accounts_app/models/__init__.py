"""The desired state (DESIGN §2): AWS accounts, people and their IAM users,
projects, operation roles, access requests and the audit log. The worker
(provisioning) makes AWS match it.

One module per aggregate; every model and choice is importable from here
(`from accounts_app.models import AccessRequest`), which is also how Django
finds them."""

from accounts_app.models.accounts import AwsAccount
from accounts_app.models.audit import AuditEvent
from accounts_app.models.people import IamUser, IamUserState
from accounts_app.models.projects import AutoApprovalRule, OperationRole, Project
from accounts_app.models.requests import (
    AccessRequest,
    Approval,
    ReadinessState,
    RequestStatus,
)
from accounts_app.models.reviews import (
    AccessReview,
    AccessReviewItem,
    BreakGlassReview,
    ReviewDecision,
    ReviewOutcome,
)
from accounts_app.models.sync import SyncState, SyncStatus
from accounts_app.models.tokens import ApiToken, DeviceAuthorization, TokenScope

__all__ = [
    "AccessRequest",
    "AccessReview",
    "AccessReviewItem",
    "ApiToken",
    "Approval",
    "AuditEvent",
    "AutoApprovalRule",
    "AwsAccount",
    "BreakGlassReview",
    "DeviceAuthorization",
    "IamUser",
    "IamUserState",
    "OperationRole",
    "Project",
    "ReadinessState",
    "RequestStatus",
    "ReviewDecision",
    "ReviewOutcome",
    "SyncState",
    "SyncStatus",
    "TokenScope",
]

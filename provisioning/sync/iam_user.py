"""Create or fix an active person's IAM user: the user's own sync and a role's
(which first creates the users its trust names) both do it."""

from django.utils import timezone

from accounts_app.models import IamUser
from provisioning import aws, baseline, iam, policies, recovery
from provisioning.sync.outcomes import _conf, _record_success


def _apply_user(user: IamUser) -> None:
    """Create or fix the IAM user. The caller holds the row lock."""
    version = user.desired_version
    result = iam.ensure_user(
        aws.client("iam", user.account),
        name=user.name,
        path=_conf("IAM_PATH"),
        tags=policies.user_tags(email=user.email),
        group=_conf("GROUP_NAME"),
        boundary_arn=baseline.user_boundary_arn(user.account),
    )
    created = result.get("CreateDate")
    recovery.note_recreated(user, result.get("UserId", ""))
    _record_success(
        user,
        version,
        arn=result["Arn"],
        unique_id=result.get("UserId", ""),
        # AWS's own date: a user re-created (after a deletion behind opsgate's
        # back) is new to IAM again, and trusts may reject it for a while.
        created_in_aws_at=created or user.created_in_aws_at or timezone.now(),
    )

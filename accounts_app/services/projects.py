"""Projects: a name in an AWS account, its approvers and allowed durations."""

from typing import Any

from django.db import transaction

from accounts_app import validation
from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount, Project
from accounts_app.validation import check_field, field_error

# Approvers are the few people who decide a project's requests; every one of
# them is e-mailed about every request.
MAX_APPROVERS = 100


def project_create(
    *,
    actor: Any,
    name: str,
    account: AwsAccount,
    approvers: list = (),
    description: str = "",
    allowed_durations: list[int] | None = None,
    allow_permanent: bool = False,
) -> Project:
    check_field("name", validation.validate_project_name, name)
    if Project.objects.filter(account=account, name=name).exists():
        raise field_error("name", f"A project named {name!r} already exists.")
    if len(approvers) > MAX_APPROVERS:
        raise field_error(
            "approvers", f"At most {MAX_APPROVERS} approvers per project."
        )
    durations = sorted(set(allowed_durations or Project.DEFAULT_DURATIONS))
    if any(h < 1 or h > 24 * 366 for h in durations):
        raise field_error("allowed_durations", "Durations are 1 to 8784 hours.")
    with transaction.atomic():
        project = Project.objects.create(
            name=name,
            account=account,
            description=description,
            allowed_durations=durations,
            allow_permanent=allow_permanent,
        )
        project.approvers.set(approvers)
        audit_record(
            actor=actor,
            action="project.add",
            obj=project,
            project=project,
            after={
                "name": name,
                "approvers": [a.get_username() for a in approvers],
                "allowed_durations": durations,
                "allow_permanent": allow_permanent,
            },
        )
    return project

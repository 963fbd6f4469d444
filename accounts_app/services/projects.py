"""Projects: a name in an AWS account, its approvers and allowed durations."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts_app import validation
from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount, Project
from accounts_app.validation import check_field

# Approvers are the few people who decide a project's requests; every one of
# them is e-mailed about every request.
MAX_APPROVERS = 100
MIN_HOURS, MAX_HOURS = 1, 24 * 366
DURATIONS_RANGE = f"Durations are {MIN_HOURS} to {MAX_HOURS} hours."


def _check(
    *, account: AwsAccount, name: str | None, approvers, durations, exclude=None
) -> None:
    """Every field checked, every error reported at once (one ValidationError
    keyed by field). `name` None: not changed (an edit)."""
    errors: dict[str, str] = {}
    if name is not None:
        try:
            check_field("name", validation.validate_project_name, name)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
        else:
            taken = Project.objects.filter(account=account, name=name)
            if exclude is not None:
                taken = taken.exclude(pk=exclude.pk)
            if taken.exists():
                errors["name"] = f"A project named {name!r} already exists."
    if len(approvers) > MAX_APPROVERS:
        errors["approvers"] = f"At most {MAX_APPROVERS} approvers per project."
    if any(h < MIN_HOURS or h > MAX_HOURS for h in durations):
        errors["allowed_durations"] = DURATIONS_RANGE
    if errors:
        raise ValidationError(errors)


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
    durations = sorted(set(allowed_durations or Project.DEFAULT_DURATIONS))
    _check(account=account, name=name, approvers=approvers, durations=durations)
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


def _state(project: Project) -> dict:
    return {
        "description": project.description,
        "approvers": sorted(a.get_username() for a in project.approvers.all()),
        "allowed_durations": project.durations,
        "allow_permanent": project.allow_permanent,
        "rejection_reason_optional": project.rejection_reason_optional,
        "create_os_users": project.create_os_users,
    }


def project_update(
    *,
    actor: Any,
    project: Project,
    approvers: list,
    description: str = "",
    allowed_durations: list[int] | None = None,
    allow_permanent: bool = False,
    rejection_reason_optional: bool = False,
    create_os_users: bool | None = None,
) -> Project:
    """Change what the portal's project page edits (the name stays: it is the
    Project tag in AWS). The audit row holds the fields that changed. Grants
    already approved stay; a grant not yet in AWS whose approver is no longer
    one is refused by the worker (provisioning.sync)."""
    durations = sorted(set(allowed_durations or Project.DEFAULT_DURATIONS))
    _check(account=project.account, name=None, approvers=approvers, durations=durations)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = _state(locked)
        locked.description = description
        locked.allowed_durations = durations
        locked.allow_permanent = allow_permanent
        locked.rejection_reason_optional = rejection_reason_optional
        # Readiness (issue 25): None keeps the project's choice.
        if create_os_users is not None:
            locked.create_os_users = create_os_users
        locked.save(
            update_fields=[
                "description",
                "allowed_durations",
                "allow_permanent",
                "rejection_reason_optional",
                "create_os_users",
            ]
        )
        locked.approvers.set(approvers)
        after = _state(locked)
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            audit_record(
                actor=actor,
                action="project.change",
                obj=locked,
                project=locked,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return locked

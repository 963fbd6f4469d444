"""A person's IAM user: made while they are active, removed when they are
offboarded (DESIGN §4.1), once every role that listed them is rewritten."""

from typing import Any

from django.db import transaction

from accounts_app.models import AccessRequest, IamUser, IamUserState, OperationRole
from provisioning import aws, iam
from provisioning.aws import AwsError, RetryLater
from provisioning.sync.accounts import _ensure_baseline, _repairs_baseline_once
from provisioning.sync.iam_user import _apply_user
from provisioning.sync.outcomes import _conf, _record_error, _record_success
from provisioning.sync.roles import role_sync


@_repairs_baseline_once(IamUser, "iam_user_id")
def iam_user_sync(*, iam_user_id: int) -> None:
    user = IamUser.objects.select_related("account").get(pk=iam_user_id)
    if user.state != IamUserState.ACTIVE:
        _remove_user(iam_user_id)
        return
    try:
        _ensure_baseline(user.account)
        with transaction.atomic():
            user = (
                IamUser.objects.select_for_update(of=("self",))
                .select_related("account")
                .get(pk=iam_user_id)
            )
            if user.applied_version >= user.desired_version and user.arn:
                return
            _apply_user(user)
    except AwsError as exc:
        _record_error(IamUser, iam_user_id, exc)
        raise


def _remove_user(iam_user_id: int) -> None:
    """Offboarding (DESIGN §4.1), in three steps, each committed on its own:
    (1) the person is disabled in the identity account at once (no console
    password, access keys, MFA devices or groups, so no sts:AssumeRole),
    whatever the other accounts do; (2) every role that listed them is
    rewritten, each on its own, so an account that does not answer holds up
    none of the others; (3) once all those roles have converged, the IAM user
    is deleted (no trust keeps a dangling AIDA… id). While a role waits, the
    user stays disabled with a "retrying" error naming it: the sweep runs this
    again, and the account is cleaned when it answers."""
    try:
        if not _user_step(iam_user_id, iam.disable_user):
            return
        waiting = _rewrite_roles_of(iam_user_id)
        if waiting:
            person = IamUser.objects.select_related("account").get(pk=iam_user_id)
            raise RetryLater(
                f"Disabled in {person.account}: no console password, access "
                "keys, MFA devices or groups. The IAM user is deleted once "
                f"these roles no longer trust it: {'; '.join(waiting)}",
                action="iam:DeleteUser",
                code="RolesPending",
            )
        _user_step(iam_user_id, iam.delete_user, record=True)
    except AwsError as exc:
        _record_error(IamUser, iam_user_id, exc)
        raise


def _user_step(iam_user_id: int, step: Any, *, record: bool = False) -> bool:
    """Run `step` (iam.disable_user or iam.delete_user) on an offboarded
    person's IAM user under the row's lock; False when the record has already
    converged. Never touches another record's IAM user: with an id recorded,
    only that user, and never one whose id a person still active holds (an
    earlier release let a re-added person adopt the old user); with no id
    recorded, nothing once the name is someone's again (people.person_add adds
    them only after this record has converged, so the user is theirs)."""
    with transaction.atomic():
        user = (
            IamUser.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=iam_user_id)
        )
        if user.applied_version >= user.desired_version:
            return False
        version = user.desired_version
        successors = IamUser.objects.filter(
            account=user.account, name__iexact=user.name, state=IamUserState.ACTIVE
        )
        if user.unique_id or not successors.exists():
            step(
                aws.client("iam", user.account),
                name=user.name,
                path=_conf("IAM_PATH"),
                unique_id=user.unique_id,
                spare_ids=frozenset(
                    i for i in successors.values_list("unique_id", flat=True) if i
                ),
                service_credentials=_conf("DELETE_SERVICE_CREDENTIALS"),
            )
        if record:
            _record_success(user, version)
    return True


def _rewrite_roles_of(iam_user_id: int) -> list[str]:
    """Sync every role the person ever had a grant on that is behind, each on
    its own; what still waits ("<role> in <account>: <why>")."""
    role_ids = AccessRequest.objects.filter(requester_id=iam_user_id).values("role_id")
    errors: dict[int, str] = {}
    for role in OperationRole.behind().filter(pk__in=role_ids):
        try:
            role_sync(role_id=role.pk)
        except AwsError as exc:
            errors[role.pk] = exc.message
    behind = OperationRole.behind().filter(pk__in=role_ids).select_related("account")
    return [
        f"{role.role_name} in {role.account}: "
        f"{errors.get(role.pk, 'not rewritten yet')}"
        for role in behind.order_by("pk")
    ]

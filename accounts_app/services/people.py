"""People: add a person (portal login + IAM user), offboard them."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts_app import validation
from accounts_app.audit import audit_record
from accounts_app.models import (
    AccessRequest,
    AwsAccount,
    IamUser,
    IamUserState,
    RequestStatus,
)
from accounts_app.services import tokens
from accounts_app.services.request_ending import request_end
from accounts_app.sync_requests import desired_changed, request_sync


def _field(field: str, message: str) -> ValidationError:
    return ValidationError({field: message})


def iam_user_name_taken(account: AwsAccount, name: str) -> bool:
    return IamUser.objects.filter(
        account=account, name__iexact=name, state=IamUserState.ACTIVE
    ).exists()


def previous_user_pending(account: AwsAccount, name: str) -> IamUser | None:
    """An offboarded record of that name whose IAM user the worker has not
    finished removing (DESIGN §4.1: disabled at once, deleted once every role
    that trusted it is rewritten)."""
    return (
        IamUser.behind()
        .filter(account=account, name__iexact=name, state=IamUserState.REMOVED)
        .order_by("-pk")
        .first()
    )


def person_add(
    *,
    actor: Any,
    account: AwsAccount,
    iam_user_name: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
) -> IamUser:
    """Create the person's portal login (no usable password yet) and their IAM
    user record; the worker creates the IAM user after commit."""
    try:
        validation.validate_iam_user_name(iam_user_name)
    except ValidationError as exc:
        raise _field("iam_user_name", validation.first_message(exc)) from None
    email = email.strip()
    if email:
        try:
            validation.validate_email(email)
        except ValidationError as exc:
            raise _field("email", validation.first_message(exc)) from None
    if not account.holds_people:
        raise _field(
            "account",
            f"{account} holds no people: add the person to its identity "
            f"account {account.identity}.",
        )
    if iam_user_name_taken(account, iam_user_name):
        raise _field(
            "iam_user_name",
            f"{iam_user_name} is taken in {account.name} "
            "(IAM names are unique regardless of case).",
        )
    previous = previous_user_pending(account, iam_user_name)
    if previous is not None:
        # IAM names are unique: the new person would get the old user (its
        # keys, password, MFA, and the trusts not rewritten yet), and the old
        # record's deletion would later take it away from them.
        raise _field(
            "iam_user_name",
            f"{previous.name} was offboarded and their IAM user in {account.name} "
            "is still being removed (disabled already; deleted once every role "
            "that trusted it is rewritten). Add the person again once it is "
            "gone: the offboarded record's page shows what it waits for.",
        )
    User = get_user_model()
    login = None
    if email:
        login = User.objects.filter(email__iexact=email).first()
        if (
            login
            and IamUser.objects.filter(
                user=login, account=account, state=IamUserState.ACTIVE
            ).exists()
        ):
            raise _field("email", f"{email} already has an IAM user in {account.name}.")
    if login is None and User.objects.filter(username__iexact=iam_user_name).exists():
        raise _field(
            "iam_user_name", f"A portal login named {iam_user_name} already exists."
        )
    with transaction.atomic():
        if login is not None and not login.is_active:
            # Offboarded before and back again: a new IAM user, no old access.
            login.is_active = True
            login.save(update_fields=["is_active"])
        if login is None:
            login = User(
                username=iam_user_name,
                email=email,
                first_name=first_name,
                last_name=last_name,
                is_staff=is_staff,
            )
            login.set_unusable_password()
            login.save()
        person = IamUser.objects.create(
            user=login, account=account, name=iam_user_name, email=email
        )
        audit_record(
            actor=actor,
            action="person.add",
            obj=person,
            after={
                "iam_user_name": iam_user_name,
                "email": email,
                "account": account.account_id,
            },
        )
        request_sync(person)
    return person


def person_email_set(*, iam_user: IamUser, email: str, actor: Any) -> IamUser:
    """Change the e-mail of a person's IAM user (its `E-mail Address` tag in
    AWS): validated, audited, synced."""
    email = email.strip()
    if email:
        try:
            validation.validate_email(email)
        except ValidationError as exc:
            raise _field("email", validation.first_message(exc)) from None
    with transaction.atomic():
        person = IamUser.objects.select_for_update(of=("self",)).get(pk=iam_user.pk)
        before = person.email
        if email == before:
            return person
        person.email = email
        person.save(update_fields=["email"])
        audit_record(
            actor=actor,
            action="person.email",
            obj=person,
            before={"email": before},
            after={"email": email},
        )
        desired_changed(person)
    return person


def console_password_record(*, iam_user: IamUser, actor: Any) -> None:
    """The audit row of a console password given by
    provisioning.direct.console_password_create (never the password)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="person.console_password",
            obj=iam_user,
            after={"login_profile": "created", "password_reset_required": True},
        )


def person_offboard(*, iam_user: IamUser, actor: Any, reason: str = "") -> IamUser:
    """Take all access away: grants revoked, pending requests cancelled, the
    roles that trusted the person rewritten, and the IAM user deleted with
    everything that blocks DeleteUser (by the worker). The portal login is
    disabled unless the person keeps an IAM user in another account."""
    comment = reason.strip() or "Offboarded."
    with transaction.atomic():
        person = (
            IamUser.objects.select_for_update(of=("self",))
            .select_related("user", "account")
            .get(pk=iam_user.pk)
        )
        if person.state != IamUserState.ACTIVE:
            raise ValidationError(f"{person.name} is already offboarded.")
        now = timezone.now()
        open_requests = (
            AccessRequest.objects.select_for_update(of=("self",))
            .filter(
                requester=person,
                status__in=[RequestStatus.APPROVED, RequestStatus.PENDING],
            )
            .select_related("role__project", "decided_by")
        )
        revoked = 0
        for req in open_requests:
            grant = req.status == RequestStatus.APPROVED
            revoked += grant
            request_end(
                req,
                status=RequestStatus.REVOKED if grant else RequestStatus.CANCELLED,
                actor=actor,
                action="request.revoke" if grant else "request.cancel",
                now=now,
                comment=comment,
                audit_extra={"reason": comment},
            )
        person.state = IamUserState.REMOVED
        person.save(update_fields=["state"])
        login = person.user
        keeps_login = IamUser.objects.filter(
            user=login, state=IamUserState.ACTIVE
        ).exists()
        if not keeps_login and login.is_active:
            login.is_active = False
            login.save(update_fields=["is_active"])
        if not keeps_login:
            tokens.tokens_revoke_all(owner=login, actor=actor, reason="offboarded")
        audit_record(
            actor=actor,
            action="person.offboard",
            obj=person,
            before={"state": IamUserState.ACTIVE},
            after={
                "state": IamUserState.REMOVED,
                "reason": comment,
                "grants_revoked": revoked,
                "portal_login_disabled": not keeps_login,
            },
        )
        desired_changed(person)
    return person

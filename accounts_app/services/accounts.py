"""AWS accounts opsgate manages."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts_app import validation
from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount
from accounts_app.sync_requests import desired_changed, request_sync
from accounts_app.validation import check_field, field_error


def account_get_default() -> AwsAccount:
    account = AwsAccount.objects.filter(is_default=True).first()
    if account is None:
        raise ValidationError(
            "No AWS account is configured yet. Run `manage.py opsgate_setup` "
            "(it finds the account of opsgate's credentials) or add one on the "
            "AWS accounts page."
        )
    return account


def account_default_add(
    *, account_id: str, actor: Any = None, name: str = ""
) -> AwsAccount:
    """Record the account opsgate's own credentials belong to as the default
    (provisioning.direct.account_ensure_default finds its id in AWS)."""
    with transaction.atomic():
        existing = AwsAccount.objects.filter(is_default=True).first()
        if existing:
            return existing
        account, created = AwsAccount.objects.get_or_create(
            account_id=account_id,
            defaults={
                "name": name or settings.OPSGATE["DEFAULT_ACCOUNT_NAME"],
                "is_default": True,
            },
        )
        if created:
            audit_record(
                actor=actor,
                action="account.add",
                obj=account,
                after={"account_id": account_id, "name": account.name},
            )
            request_sync(account)
    return account


# --- Several accounts (DESIGN §1.5) ----------------------------------------

FIELDS = (
    "name",
    "holds_people",
    "holds_roles",
    "assume_role_arn",
    "external_id",
    "regions",
)


def _snapshot(account: AwsAccount) -> dict[str, Any]:
    values = {f: getattr(account, f) for f in FIELDS}
    values["account_id"] = account.account_id
    values["identity_account"] = account.identity.account_id
    return values


def _identity_find(account: AwsAccount, identity_account_id: str) -> AwsAccount | None:
    """The identity account by its 12-digit id; None: the account itself."""
    if not identity_account_id or identity_account_id == account.account_id:
        return None
    check_field("identity_account", validation.validate_account_id, identity_account_id)
    identity = AwsAccount.objects.filter(account_id=identity_account_id).first()
    if identity is None:
        raise field_error(
            "identity_account",
            f"No account {identity_account_id} in opsgate: add the identity "
            "account first.",
        )
    return identity


def _check_setup(account: AwsAccount) -> None:
    """Everything about an account that can be refused before it is saved,
    each with the field it is about."""
    check_field("account_id", validation.validate_account_id, account.account_id)
    name = account.name.strip()
    if not name or len(name) > 100:
        raise field_error("name", "Give the account a name of 1 to 100 characters.")
    if AwsAccount.objects.filter(name__iexact=name).exclude(pk=account.pk).exists():
        raise field_error("name", f"An account is already named {name}.")
    if (
        AwsAccount.objects.filter(account_id=account.account_id)
        .exclude(pk=account.pk)
        .exists()
    ):
        raise field_error(
            "account_id", f"Account {account.account_id} is already in opsgate."
        )
    if account.partition not in validation.PARTITIONS:
        raise field_error("partition", "The partition is aws, aws-cn or aws-us-gov.")
    if not (account.holds_people or account.holds_roles):
        raise field_error("holds_roles", "An account holds people, roles or both.")
    if account.pk:
        trusting = account.trusting_accounts.exclude(pk=account.pk)
        if trusting.exists() and (
            not account.holds_people or account.identity_account is not None
        ):
            names = ", ".join(str(a) for a in trusting[:5])
            raise field_error(
                "identity_account"
                if account.identity_account is not None
                else "holds_people",
                f"{names} trust the IAM users of this account: it must hold "
                "people and trust its own users.",
            )
        if (
            not account.holds_people
            and account.iam_users.filter(state="active").exists()
        ):
            raise field_error(
                "holds_people",
                "This account still holds IAM users: offboard them first.",
            )
        if not account.holds_roles and account.roles.exists():
            raise field_error(
                "holds_roles", "This account still holds operation roles."
            )
    identity = account.identity_account
    if identity is not None:
        if not account.holds_roles:
            raise field_error(
                "identity_account",
                "Only an account that holds roles trusts an identity account.",
            )
        if not identity.holds_people:
            raise field_error(
                "identity_account",
                f"{identity} holds no people: an identity account holds the IAM users.",
            )
        if identity.identity_account_id not in (None, identity.pk):
            raise field_error(
                "identity_account",
                f"{identity} trusts the users of {identity.identity} itself: an "
                "identity account trusts its own users (no chains or cycles).",
            )
        if identity.partition != account.partition:
            raise field_error(
                "identity_account",
                f"{identity} is in partition {identity.partition}: roles trust "
                "users of their own partition only.",
            )
    elif account.holds_roles and not account.holds_people:
        raise field_error(
            "identity_account",
            "A roles-only account names the identity account whose IAM users "
            "its roles trust.",
        )
    if account.external_id and not account.assume_role_arn:
        raise field_error(
            "external_id", "An external id goes with a provisioner role ARN."
        )
    if account.assume_role_arn:
        check_field(
            "assume_role_arn",
            lambda v: validation.validate_provisioner_role_arn(
                v, account_id=account.account_id, partition=account.partition
            ),
            account.assume_role_arn,
        )
    if account.external_id:
        check_field("external_id", validation.validate_external_id, account.external_id)
    check_field("regions", validation.validate_regions, account.regions)
    if not account.assume_role_arn:
        _own_credentials_fit(account)


def _own_credentials_fit(account: AwsAccount) -> None:
    """Without a provisioner role opsgate acts with its own credentials: only
    in the account they belong to, the default one recorded by
    `opsgate_setup` (the worker checks it again with sts:GetCallerIdentity
    before any call, issue 20 item 15)."""
    own = AwsAccount.objects.filter(is_default=True).first()
    if own is not None and own.account_id == account.account_id:
        return
    where = (
        f"they belong to {own}" if own else "run `manage.py opsgate_setup` first"
    )
    raise field_error(
        "assume_role_arn",
        f"opsgate's own credentials act only in their own account ({where}): "
        f"give the provisioner role ARN opsgate assumes in {account.account_id}.",
    )


def account_add(
    *,
    actor: Any,
    account_id: str,
    name: str,
    holds_people: bool = True,
    holds_roles: bool = True,
    identity_account_id: str = "",
    assume_role_arn: str = "",
    external_id: str = "",
    regions: list[str] = (),
    partition: str = "aws",
) -> AwsAccount:
    """An account opsgate manages from now on (added by hand or enabled after
    discovery). Nothing is written when any input is refused."""
    account_id = (account_id or "").strip()
    account = AwsAccount(
        account_id=account_id,
        name=(name or "").strip(),
        holds_people=holds_people,
        holds_roles=holds_roles,
        assume_role_arn=(assume_role_arn or "").strip(),
        external_id=(external_id or "").strip(),
        regions=sorted({r.strip() for r in regions if r.strip()}),
        partition=partition,
    )
    account.identity_account = _identity_find(account, identity_account_id.strip())
    _check_setup(account)
    with transaction.atomic():
        account.save()
        audit_record(
            actor=actor, action="account.add", obj=account, after=_snapshot(account)
        )
        request_sync(account)
    return account


def account_update(*, actor: Any, account: AwsAccount, **changes: Any) -> AwsAccount:
    """Change how opsgate reaches an account, what it holds, whom its roles
    trust, or its regions. Roles whose trust changes are synced again."""
    identity_account_id = changes.pop("identity_account_id", None)
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    with transaction.atomic():
        account = AwsAccount.objects.select_for_update().get(pk=account.pk)
        before = _snapshot(account)
        for field, value in changes.items():
            if isinstance(value, str):
                value = value.strip()
            if field == "regions":
                value = sorted({r.strip() for r in value if r.strip()})
            setattr(account, field, value)
        if identity_account_id is not None:
            account.identity_account = _identity_find(
                account, identity_account_id.strip()
            )
        _check_setup(account)
        account.save()
        after = _snapshot(account)
        if after == before:
            return account
        audit_record(
            actor=actor,
            action="account.update",
            obj=account,
            before=before,
            after=after,
        )
        desired_changed(account)
        if before["identity_account"] != after["identity_account"]:
            for role in account.roles.select_for_update():
                desired_changed(role)
    return account

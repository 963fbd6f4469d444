"""AWS accounts opsgate manages."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts_app.audit import audit_record
from accounts_app.models import AwsAccount
from accounts_app.sync_requests import request_sync


def account_get_default() -> AwsAccount:
    account = AwsAccount.objects.filter(is_default=True).first()
    if account is None:
        raise ValidationError(
            "No AWS account is configured yet. Run `manage.py opsgate_setup` "
            "or add one in the admin."
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

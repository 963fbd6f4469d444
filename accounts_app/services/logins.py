"""What a portal login proves about itself: following the invitation (or a
password-reset) link, or signing on with an identity provider that vouches
for the address, proves the e-mail address; allauth lets nobody set up TOTP
with an unverified one. And a new password ends every API token."""

from typing import Any

from allauth.account.models import EmailAddress
from django.db import transaction

from accounts_app.audit import audit_record
from accounts_app.services import tokens


def email_address_verify(*, user: Any, email: str, how: str, actor: Any) -> bool:
    """Mark `email` verified and primary for the login (allauth's
    EmailAddress), when it is the login's own address. True when it changed."""
    email = (email or "").strip()
    if not email or email.lower() != (user.email or "").strip().lower():
        return False
    with transaction.atomic():
        rows = list(EmailAddress.objects.select_for_update().filter(user=user))
        address = next((a for a in rows if a.email.lower() == email.lower()), None)
        if address is not None and address.verified and address.primary:
            return False
        taken = (
            EmailAddress.objects.filter(email__iexact=email, verified=True)
            .exclude(user=user)
            .exists()
        )
        if taken:  # another login holds it: leave both alone
            return False
        for other in rows:
            if other is not address and other.primary:
                other.primary = False
                other.save(update_fields=["primary"])
        if address is None:
            address = EmailAddress(user=user, email=user.email)
        address.verified, address.primary = True, True
        address.save()
        audit_record(
            actor=actor,
            action="login.email_verified",
            obj=user,
            after={"email": address.email, "how": how},
        )
    return True


def login_tokens_revoke(*, user: Any, how: str, actor: Any) -> int:
    """A new password (changed, or reset from a mailed link) ends every API
    token of the login: whoever had the old password may have made one.
    Returns how many were revoked."""
    with transaction.atomic():
        return tokens.tokens_revoke_all(
            owner=user, actor=actor, reason=f"password {how}"
        )

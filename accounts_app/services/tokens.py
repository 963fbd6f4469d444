"""Personal access tokens (the API and the `opsgate` CLI) and the device
login that hands one to the CLI. Every write is audited; the secret exists
only in the return value of `token_create` and `device_authorization_poll`."""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts_app import approval_rules
from accounts_app.audit import audit_record
from accounts_app.models import (
    ApiToken,
    DeviceAuthorization,
    IamUser,
    IamUserState,
    TokenScope,
)
from accounts_app.validation import field_error

TOKEN_PREFIX = "ogp_"
DEVICE_LOGIN_MINUTES = 10
DEVICE_TOKEN_DAYS = 30
# No 0/O, 1/I/L: the person types this code.
_USER_CODE_CHARS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _snapshot(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "owner": token.user.get_username(),
        "scopes": token.scopes,
        "expires_at": token.expires_at.isoformat(),
        "revoked": token.revoked_at is not None,
    }


def token_create(
    *, owner: Any, name: str, scopes: list[str], days: int | None, actor: Any
) -> tuple[ApiToken, str]:
    """A new token for `owner`; returns it with its secret (shown once)."""
    name = (name or "").strip()
    if not name:
        raise field_error("name", "Name the token, e.g. the laptop or script using it.")
    if len(name) > 100:
        raise field_error("name", "At most 100 characters.")
    valid = set(TokenScope.values)
    scopes = sorted(set(scopes or []))
    if not scopes:
        raise field_error("scopes", "Pick at least one scope.")
    if not set(scopes) <= valid:
        raise field_error("scopes", "Scopes are read, request and approve.")
    if days is None:
        raise field_error("days", "A token needs an expiry.")
    if not 1 <= days <= ApiToken.MAX_DAYS:
        raise field_error("days", f"Pick between 1 and {ApiToken.MAX_DAYS} days.")
    if not owner.is_active:
        raise ValidationError("This login is disabled.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=owner,
            name=name,
            prefix=secret[:12],
            digest=_digest(secret),
            scopes=scopes,
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(
            actor=actor, action="token.create", obj=token, after=_snapshot(token)
        )
    return token, secret


def token_revoke(*, token: ApiToken, actor: Any, reason: str = "") -> ApiToken:
    """The owner or a staff admin revokes a token; revoking twice is a no-op."""
    if not (actor.pk == token.user_id or actor.is_staff):
        raise PermissionDenied("Only the token's owner or an admin can revoke it.")
    return _revoke(token, actor=actor, reason=reason)


def _revoke(token: ApiToken, *, actor: Any, reason: str) -> ApiToken:
    with transaction.atomic():
        token = (
            ApiToken.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=token.pk)
        )
        if token.revoked_at is not None:
            return token
        before = _snapshot(token)
        token.revoked_at = timezone.now()
        token.revoked_by = actor if getattr(actor, "pk", None) else None
        token.save(update_fields=["revoked_at", "revoked_by"])
        after = _snapshot(token)
        if reason:
            after["reason"] = reason
        audit_record(
            actor=actor, action="token.revoke", obj=token, before=before, after=after
        )
    return token


def tokens_revoke_all(*, owner: Any, actor: Any, reason: str) -> int:
    """Offboarding: every live token of the login stops working (the caller
    holds the transaction)."""
    count = 0
    for token in ApiToken.objects.filter(user=owner, revoked_at__isnull=True):
        _revoke(token, actor=actor, reason=reason)
        count += 1
    return count


def tokens_revoke_own(*, owner: Any, actor: Any) -> int:
    """The owner (or an admin) ends every live token of the login at once,
    e.g. when a laptop may have leaked one; each revocation is audited."""
    if not (actor.pk == owner.pk or actor.is_staff):
        raise PermissionDenied("Only the owner or an admin can revoke these tokens.")
    with transaction.atomic():
        return tokens_revoke_all(owner=owner, actor=actor, reason="revoke all")


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token for this secret, or None: unknown, expired, revoked, or
    its owner offboarded or disabled."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    # A login whose IAM users are all removed (and that had one) is
    # offboarded, even if an admin re-enabled the login afterwards: asked in
    # the token's own query (every API call authenticates).
    people = IamUser.objects.filter(user=OuterRef("user_id"))
    token = (
        ApiToken.objects.select_related("user")
        .annotate(
            has_person=Exists(people),
            has_active_person=Exists(people.filter(state=IamUserState.ACTIVE)),
        )
        .filter(digest=_digest(secret))
        .first()
    )
    if token is None or not token.is_usable():
        return None
    offboarded = token.has_person and not token.has_active_person
    if not token.user.is_active or offboarded:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# --- Device login (`opsgate login`) ------------------------------------------


def device_authorization_start(*, client_name: str = "") -> tuple[str, str]:
    """Returns (device_code for the CLI, user_code for the person)."""
    device_code = secrets.token_urlsafe(32)
    for _ in range(5):
        raw = "".join(secrets.choice(_USER_CODE_CHARS) for _ in range(8))
        user_code = f"{raw[:4]}-{raw[4:]}"
        if not DeviceAuthorization.objects.filter(user_code=user_code).exists():
            break
    DeviceAuthorization.objects.create(
        device_digest=_digest(device_code),
        user_code=user_code,
        client_name=(client_name or "")[:100],
        expires_at=timezone.now() + timedelta(minutes=DEVICE_LOGIN_MINUTES),
    )
    return device_code, user_code


def normalise_user_code(code: str) -> str:
    raw = "".join(c for c in (code or "").upper() if c.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else (code or "").strip()


def device_authorization_find(user_code: str) -> DeviceAuthorization:
    auth = DeviceAuthorization.objects.filter(
        user_code=normalise_user_code(user_code),
        expires_at__gt=timezone.now(),
        approved_at__isnull=True,
        denied_at__isnull=True,
    ).first()
    if auth is None:
        raise field_error(
            "user_code",
            "No login is waiting for this code: check it, or run opsgate login again "
            f"(codes last {DEVICE_LOGIN_MINUTES} minutes).",
        )
    return auth


def device_authorization_approve(*, user_code: str, user: Any) -> DeviceAuthorization:
    with transaction.atomic():
        auth = device_authorization_find(user_code)
        auth = DeviceAuthorization.objects.select_for_update().get(pk=auth.pk)
        auth.approved_by, auth.approved_at = user, timezone.now()
        auth.save(update_fields=["approved_by", "approved_at"])
        audit_record(
            actor=user,
            action="token.device_approve",
            obj=auth,
            after={"client": auth.client_name},
        )
    return auth


def device_token_scopes(user: Any) -> list[str]:
    """What a device login's token may do: read and request, and approve for
    admins and approvers (the confirmation page lists these)."""
    scopes = [TokenScope.READ, TokenScope.REQUEST]
    if user.is_staff or approval_rules.is_approver(user):
        scopes.append(TokenScope.APPROVE)
    return scopes


def device_authorization_poll(device_code: str) -> tuple[str, str | None]:
    """("pending" | "expired" | "denied" | "used" | "ok", secret or None).
    The first poll after approval creates the token (all scopes the person
    can use, DEVICE_TOKEN_DAYS days) and returns its secret; later polls get
    "used"."""
    with transaction.atomic():
        auth = (
            DeviceAuthorization.objects.select_for_update()
            .filter(device_digest=_digest(device_code or ""))
            .first()
        )
        if auth is None:
            return "expired", None
        if auth.denied_at:
            return "denied", None
        if auth.token_id:
            return "used", None
        # Expiry holds at redemption too: a login confirmed but not collected
        # in time is over.
        if auth.expires_at <= timezone.now():
            return "expired", None
        if auth.approved_at is None:
            return "pending", None
        user = auth.approved_by
        name = f"opsgate CLI {auth.client_name}".strip()
        token, secret = token_create(
            owner=user,
            name=name,
            scopes=device_token_scopes(user),
            days=DEVICE_TOKEN_DAYS,
            actor=user,
        )
        auth.token = token
        auth.save(update_fields=["token"])
    return "ok", secret

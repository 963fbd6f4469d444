"""API: the token's owner (/me) and signing out (/me/logout)."""

from django.http import HttpRequest
from ninja.responses import Status

from accounts_app.models import (
    IamUser,
    IamUserState,
)
from accounts_app.services import tokens
from portal.api import schemas as s
from portal.api.app import _r, api
from portal.api.core import require_scope


@api.get("/me", response=_r({200: s.MeOut}), tags=["me"])
def me(request: HttpRequest):
    """Who this token acts as."""
    require_scope(request, "read")
    user = request.user
    person = IamUser.objects.filter(user=user, state=IamUserState.ACTIVE).first()
    return {
        "login": user.get_username(),
        "email": user.email,
        "is_staff": user.is_staff,
        "approver_of": sorted(p.name for p in user.approver_of.all()),
        "iam_user_name": person.name if person else None,
        "token_name": request.auth.name,
        "token_scopes": request.auth.scopes,
        "token_expires_at": request.auth.expires_at,
    }


@api.post("/me/logout", response=_r({204: None}), tags=["me"])
def logout(request: HttpRequest):
    """Revoke the token making this call (`opsgate logout`)."""
    tokens.token_revoke(token=request.auth, actor=request.user, reason="logout")
    return Status(204, None)

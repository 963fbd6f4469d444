"""API: the device login of `opsgate login` (start, then poll for the token)."""

from django.http import HttpRequest
from django.urls import reverse

from accounts_app.client_ip import client_ip
from accounts_app.services import tokens
from portal.api import schemas as s
from portal.api.app import _r, api
from portal.api.core import (
    DEVICE_STARTS_PER_MINUTE,
    rate_limit,
)


@api.post(
    "/device/start",
    auth=None,
    response=_r({200: s.DeviceStartOut}),
    tags=["login"],
)
def device_start(request: HttpRequest, payload: s.DeviceStartIn):
    """Step 1 of `opsgate login`: a device code for the CLI, a user code for
    the person to confirm at verification_uri while signed in."""
    rate_limit(
        f"device-start:{client_ip(request)}",
        DEVICE_STARTS_PER_MINUTE,
    )
    device_code, user_code = tokens.device_authorization_start(
        client_name=payload.client_name
    )
    uri = request.build_absolute_uri(reverse("device"))
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": f"{uri}?user_code={user_code}",
        "expires_in": tokens.DEVICE_LOGIN_MINUTES * 60,
        "interval": 2,
    }


@api.post(
    "/device/token",
    auth=None,
    response=_r({200: s.DeviceTokenOut}),
    tags=["login"],
)
def device_token(request: HttpRequest, payload: s.DeviceTokenIn):
    """Step 2, polled: `ok` once with the new token, after the person confirmed."""
    status, secret = tokens.device_authorization_poll(payload.device_code)
    return {"status": status, "token": secret}

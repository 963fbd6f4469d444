"""The browser security policies of every page, in every mode (settings.py
sets them): the Content-Security-Policy (django-csp) and the features the
Permissions-Policy denies (portal.middleware.PermissionsPolicyMiddleware)."""

from urllib.parse import urlsplit

from csp.constants import NONE, SELF


def content_security_policy(oidc_server_url: str) -> dict:
    """Scripts and styles only from opsgate's own static files (no inline
    code, no style attributes), images also as data: URIs (allauth's TOTP QR
    code, the empty favicon), no plugins, no <base>, never in a frame, forms
    only to opsgate (and to the single sign-on provider at `oidc_server_url`,
    whose login page the SSO button's form redirects to)."""
    form_targets = [SELF]
    if oidc_server_url:
        oidc = urlsplit(oidc_server_url)
        form_targets.append(f"{oidc.scheme}://{oidc.netloc}")
    return {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF],
            "style-src": [SELF],
            "img-src": [SELF, "data:"],
            "object-src": [NONE],
            "base-uri": [NONE],
            "frame-ancestors": [NONE],
            "form-action": form_targets,
        }
    }


# Browser features opsgate never uses, denied to its pages and any frame in them.
PERMISSIONS_POLICY_DENIED = [
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
]

"""allauth's TOTP forms, saying why a right code is refused: a code already
used (each signs in once, shared cache) is not an "Incorrect code"."""

from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, validate_totp_code
from allauth.mfa.utils import decrypt
from django.core.cache import cache
from django.core.exceptions import ValidationError

USED = (
    "This code was already used. Wait for the next code in your authenticator "
    "app (a new one every 30 seconds)."
)


def totp_code_was_used(user, code: str) -> bool:
    """The code is the current one for the user's TOTP, and allauth has marked
    it used (the key allauth's own TOTP.validate_code sets)."""
    authenticator = Authenticator.objects.filter(
        user=user, type=Authenticator.Type.TOTP
    ).first()
    if authenticator is None or not code:
        return False
    secret = decrypt(authenticator.data["secret"])
    if not validate_totp_code(secret, code):
        return False
    return cache.get(TOTP(authenticator)._get_used_cache_key(code)) is not None


class _SaysUsed:
    def clean_code(self) -> str:
        try:
            return super().clean_code()
        except ValidationError:
            if totp_code_was_used(self.user, self.data.get("code", "").strip()):
                raise ValidationError(USED, code="code_used") from None
            raise


class OpsgateAuthenticateForm(_SaysUsed, AuthenticateForm):
    pass


class OpsgateReauthenticateForm(_SaysUsed, ReauthenticateForm):
    pass

import time

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context

from accounts_app.client_ip import client_ip


class NoSignupAccountAdapter(DefaultAccountAdapter):
    """People are added by an admin; nobody signs themselves up."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def get_client_ip(self, request) -> str:
        """Sign-in rate limits key on the client, seen through a trusted
        proxy (accounts_app.client_ip), not on the proxy's address."""
        return client_ip(request) or super().get_client_ip(request)

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """Setting up (or changing) the authenticator app right after signing
        in does not ask for the password again: a sign-in within
        ACCOUNT_REAUTHENTICATION_TIMEOUT counts as the reauthentication."""
        required = super().is_reauthentication_required(app=app, **kwargs)
        request = self.request or getattr(context, "request", None)
        if not required or app != "allauth.mfa" or request is None:
            return required
        now = time.time()
        return not any(
            now - record.get("at", 0) < app_settings.REAUTHENTICATION_TIMEOUT
            for record in get_authentication_records(request, request.user)
        )

"""allauth's sign-in events, turned into calls of accounts_app.services.logins.

- password reset from a mailed link (the invitation is one): the address is
  proved, and the old password's API tokens end;
- password changed while signed in: the API tokens end;
- signed on with an identity provider that says the address is verified:
  the address is proved."""

from allauth.account import signals as account_signals

from accounts_app.services import logins


def _password_reset(sender, request, user, **kwargs) -> None:
    logins.email_address_verify(
        user=user, email=user.email, how="password link", actor=user
    )
    _end_tokens(request, user, how="reset")


def _password_changed(sender, request, user, **kwargs) -> None:
    _end_tokens(request, user, how="changed")


def _end_tokens(request, user, *, how: str) -> None:
    revoked = logins.login_tokens_revoke(user=user, how=how, actor=user)
    if revoked and request is not None:
        from django.contrib import messages

        messages.info(
            request,
            f"Your new password ended your {revoked} API token"
            f"{'s' if revoked != 1 else ''}: create new ones (or run opsgate "
            "login again).",
            fail_silently=True,
        )


def _logged_in(sender, request, user, sociallogin=None, **kwargs) -> None:
    if sociallogin is None:
        return
    for address in sociallogin.email_addresses:
        if address.verified:
            logins.email_address_verify(
                user=user,
                email=address.email,
                how=f"single sign-on ({sociallogin.account.provider})",
                actor=user,
            )


def connect() -> None:
    account_signals.password_reset.connect(_password_reset, dispatch_uid="og-reset")
    account_signals.password_changed.connect(
        _password_changed, dispatch_uid="og-changed"
    )
    account_signals.password_set.connect(_password_changed, dispatch_uid="og-set")
    account_signals.user_logged_in.connect(_logged_in, dispatch_uid="og-logged-in")

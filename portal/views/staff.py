"""What every admin (staff) page shares: the staff check, the way back
after a form, the default AWS account."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from accounts_app.services import accounts

PAGE_SIZE = 25


def staff_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only opsgate admins can open this page.")
        return view(request, *args, **kwargs)

    return wrapper


def _back(request: HttpRequest, default: str, *args) -> HttpResponse:
    """Redirect to the form's `next` (the dashboard's retry buttons) when it
    is a local URL, else to `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default, *args)


def _default_account_or_message(request: HttpRequest):
    try:
        return accounts.account_get_default()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return None

"""Personal access tokens (create, list, revoke) and the page where a person
confirms an `opsgate login` from the command line. The rules are in
accounts_app.services.tokens."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts_app.models import ApiToken, TokenScope
from accounts_app.services import tokens
from portal.forms.base import Form, add_service_errors


class TokenForm(Form):
    name = forms.CharField(
        max_length=100,
        help_text="Where it is used, e.g. “laptop” or “ticket bot”.",
        error_messages={
            "required": "Name the token, e.g. the laptop or script using it."
        },
    )
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one scope."},
        help_text="Approving also needs a fresh code from your authenticator app.",
    )
    days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=ApiToken.MAX_DAYS,
        initial=30,
        error_messages={"required": "A token needs an expiry."},
    )


class DeviceForm(Form):
    user_code = forms.CharField(
        label="Code shown by opsgate login", max_length=20, strip=True
    )


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            _, secret = tokens.token_create(
                owner=request.user,
                name=data["name"],
                scopes=data["scopes"],
                days=data["days"],
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            form = TokenForm()
    everyone = request.user.is_staff and request.GET.get("all") == "1"
    rows = ApiToken.objects.select_related("user", "revoked_by")
    if not everyone:
        rows = rows.filter(user=request.user)
    has_live = ApiToken.objects.filter(
        user=request.user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()
    response = render(
        request,
        "tokens/list.html",
        {
            "form": form,
            "tokens": rows[:200],
            "secret": secret,
            "everyone": everyone,
            "has_live": has_live,
        },
    )
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    rows = ApiToken.objects.all()
    if not request.user.is_staff:
        rows = rows.filter(user=request.user)
    token = get_object_or_404(rows, pk=pk)
    try:
        tokens.token_revoke(token=token, actor=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.name} revoked: it no longer works.")
    back = "?all=1" if request.POST.get("all") == "1" and request.user.is_staff else ""
    return redirect(reverse("tokens") + back)


# Wrong user codes a person may type before the page stops looking codes up
# (8 characters of 31: guessing takes many tries, and each is counted).
DEVICE_CODE_FAILURES = 5
DEVICE_CODE_LOCK_MINUTES = 10


def _device_failures_key(request: HttpRequest) -> str:
    return f"device-code-failures:{request.user.pk}"


def _device_code_failed(request: HttpRequest) -> None:
    """Counted per person in the shared cache, so every session and every web
    worker sees the same count."""
    key, timeout = _device_failures_key(request), DEVICE_CODE_LOCK_MINUTES * 60
    cache.add(key, 0, timeout=timeout)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=timeout)


@login_required
@require_POST
def tokens_revoke_all(request: HttpRequest) -> HttpResponse:
    """Every token of the signed-in person, at once (each revocation audited)."""
    count = tokens.tokens_revoke_own(owner=request.user, actor=request.user)
    if count:
        plural = "s" if count != 1 else ""
        messages.success(request, f"{count} token{plural} revoked: none works now.")
    else:
        messages.info(request, "You had no tokens to revoke.")
    return redirect("tokens")


@login_required
def device(request: HttpRequest) -> HttpResponse:
    """GET shows the code (from the URL the CLI printed) and what it grants;
    POST confirms it."""
    form = DeviceForm(request.POST or request.GET or None)
    pending = None
    if form.is_valid():
        if cache.get(_device_failures_key(request), 0) >= DEVICE_CODE_FAILURES:
            form.add_error(
                "user_code",
                f"Too many wrong codes: this page looks codes up again in at most "
                f"{DEVICE_CODE_LOCK_MINUTES} minutes. Then run opsgate login again "
                "and type the code it shows.",
            )
        else:
            try:
                pending = tokens.device_authorization_find(
                    form.cleaned_data["user_code"]
                )
            except ValidationError as exc:
                _device_code_failed(request)
                add_service_errors(form, exc)
    if request.method == "POST" and pending is not None:
        try:
            tokens.device_authorization_approve(
                user_code=pending.user_code, user=request.user
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                "Signed in on the command line. opsgate created a token for it, "
                f"valid {tokens.DEVICE_TOKEN_DAYS} days; it is listed below.",
            )
            return redirect("tokens")
    context = {"form": form, "pending": pending}
    if pending is not None:
        labels = dict(TokenScope.choices)
        context["scopes"] = [
            labels[scope] for scope in tokens.device_token_scopes(request.user)
        ]
        context["token_days"] = tokens.DEVICE_TOKEN_DAYS
        context["token_expires"] = timezone.now() + timedelta(
            days=tokens.DEVICE_TOKEN_DAYS
        )
    return render(request, "tokens/device.html", context)

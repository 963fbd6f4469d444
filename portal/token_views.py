"""Personal access tokens (create, list, revoke) and the page where a person
confirms an `opsgate login` from the command line. The rules are in
accounts_app.services.tokens."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts_app.models import ApiToken, TokenScope
from accounts_app.services import tokens
from portal.forms import Form, add_service_errors


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
    response = render(
        request,
        "tokens/list.html",
        {"form": form, "tokens": rows[:200], "secret": secret, "everyone": everyone},
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


@login_required
def device(request: HttpRequest) -> HttpResponse:
    """GET shows the code (from the URL the CLI printed) and what it grants;
    POST confirms it."""
    form = DeviceForm(request.POST or request.GET or None)
    pending = None
    if form.is_valid():
        try:
            pending = tokens.device_authorization_find(form.cleaned_data["user_code"])
        except ValidationError as exc:
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
    return render(request, "tokens/device.html", {"form": form, "pending": pending})

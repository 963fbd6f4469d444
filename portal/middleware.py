"""Admins and approvers must have TOTP before they can do anything else,
the way the IAM group forces MFA before anything else (issue 3)."""

import json

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse

from accounts_app.models import OperationRole, Project

# Signing out, setting a password and setting up MFA stay reachable.
ALLOWED_PREFIXES = ("/accounts/", "/static/", "/healthz", "/demo/")


def _approver_and_totp_sql() -> str:
    projects = Project.approvers.through._meta.db_table
    roles = OperationRole.approvers.through._meta.db_table
    totp = Authenticator._meta.db_table
    return (
        f"SELECT EXISTS (SELECT 1 FROM {projects} WHERE user_id = %(user)s)"
        f" OR EXISTS (SELECT 1 FROM {roles} WHERE user_id = %(user)s),"
        f" EXISTS (SELECT 1 FROM {totp} WHERE user_id = %(user)s AND type = %(type)s)"
    )


APPROVER_AND_TOTP = _approver_and_totp_sql()


def approver_and_totp(user) -> tuple[bool, bool]:
    """Whether `user` approves a project or a role (approval_rules.is_approver)
    and has an authenticator app (allauth's is_mfa_enabled for TOTP): every
    page asks both, so in one statement, in SQL as the ORM would compile it
    at a cost of milliseconds a page. Read on each request, never kept."""
    with connection.cursor() as cursor:
        cursor.execute(
            APPROVER_AND_TOTP,
            {"user": user.pk, "type": Authenticator.Type.TOTP.value},
        )
        approver, totp = cursor.fetchone()
    return approver, totp


class RequireMfaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(ALLOWED_PREFIXES)
        ):
            approver, totp = approver_and_totp(user)
            # The top bar and "My access" ask the same (portal.context.nav,
            # portal.views.requests.home).
            request.opsgate_is_approver = approver
            request.opsgate_has_totp = totp
            if (user.is_staff or approver) and not totp:
                messages.warning(
                    request,
                    "Admins and approvers need an authenticator app before "
                    "anything else: confirm your password, scan the QR code "
                    "with the app, then enter the 6-digit code it shows.",
                )
                return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Permissions-Policy on every response: the features in
    settings.PERMISSIONS_POLICY_DENIED are off for the page and its frames."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=()" for feature in settings.PERMISSIONS_POLICY_DENIED
        )

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response


class QueryStringGuardMiddleware:
    """400 for query strings no view can use, before any view sees them: a NUL
    character (PostgreSQL refuses it in every text comparison) and the
    admin's `_to_field` given empty (Django's admin answers that with a 500).
    Everything else in a query string is the views' to parse
    (`portal.params`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return _bad_request(request, "A query parameter holds a NUL byte.")
            if key == "_to_field" and not all(values):
                return _bad_request(request, "The parameter _to_field is empty.")
        return self.get_response(request)


def _bad_request(request, detail: str) -> HttpResponse:
    """The API answers in its one error format (RFC 9457), pages in text."""
    if not request.path.startswith("/api/"):
        return HttpResponseBadRequest(detail)
    body = {"type": "about:blank", "title": "Invalid input", "status": 400}
    return HttpResponse(
        json.dumps({**body, "detail": detail, "errors": {}}),
        status=400,
        content_type="application/problem+json",
    )

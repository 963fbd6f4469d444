"""E-mails through Django's e-mail backend, sent after the change commits.

A failing mail server never undoes or blocks a change: the failure is logged.
Functions take ids and read the state when they run, like the tasks do.
"""

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts_app import selectors
from accounts_app.models import AccessRequest

log = logging.getLogger(__name__)


def on_commit(function, *args) -> None:
    # robust: an error while mailing is logged and never reaches the caller,
    # whose change is already committed.
    transaction.on_commit(partial(function, *args), robust=True)


def _url(name: str) -> str:
    return settings.OPSGATE["BASE_URL"].rstrip("/") + reverse(name)


def _send(template: str, context: dict, recipients: list[str]) -> int:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return 0
    subject = render_to_string(f"email/{template}_subject.txt", context).strip()
    body = render_to_string(f"email/{template}.txt", context)
    try:
        return send_mail(subject, body, None, recipients)
    except Exception:  # the change is committed; a mail outage must not hide it
        log.exception("could not send %s to %s", template, ", ".join(recipients))
        return 0


def _requester_email(req: AccessRequest) -> str:
    return req.requester.user.email or req.requester.email


def _load(request_id: int) -> AccessRequest:
    return AccessRequest.objects.select_related(
        "role__project", "role__account", "requester__user", "decided_by"
    ).get(pk=request_id)


def request_created(request_id: int) -> int:
    """New request → the project's approvers (never the requester)."""
    req = _load(request_id)
    approvers = req.role.project.approvers.exclude(pk=req.requester.user_id)
    return _send(
        "request_created",
        {"req": req, "url": _url("approvals")},
        [a.email for a in approvers],
    )


def request_decided(request_id: int) -> int:
    """Approved or rejected → the requester."""
    req = _load(request_id)
    return _send(
        "request_decided",
        {"req": req, "url": _url("home")},
        [_requester_email(req)],
    )


def grants_active(request_ids: list[int]) -> int:
    """The role's trust lists the requester → how to connect."""
    sent = 0
    for pk in request_ids:
        req = _load(pk)
        sent += _send(
            "grant_active",
            {
                "req": req,
                "connection": selectors.grant_connection(req),
                "url": _url("home"),
            },
            [_requester_email(req)],
        )
    return sent


def grant_expiry_reminder(access_request) -> bool:
    """Tell the requester their grant ends soon and how to extend it. Raises
    when the mail server fails, so the caller records the reminder only once
    it was sent. Returns False when there is nobody to write to."""
    person = access_request.requester
    to = person.email or person.user.email
    if not to:
        return False
    role = access_request.role
    when = f"{access_request.expires_at:%Y-%m-%d %H:%M} UTC"
    send_mail(
        subject=f"[opsgate] Your access to {role.role_name} ends at {when}",
        message=(
            f"Hello {person.name},\n\n"
            f"your access to {role.role_name} (project {role.project.name}, "
            f"run as {role.os_user}) ends at {when}.\n"
            "To keep it, request the same role again in opsgate: an approver of "
            "the project approves the extension the same way as before.\n"
            f"\n{_url('request_access')}\n"
        ),
        from_email=None,
        recipient_list=[to],
    )
    return True

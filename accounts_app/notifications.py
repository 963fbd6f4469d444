"""E-mails through Django's e-mail backend, sent after the change commits.

A failing mail server never undoes or blocks a change: the failure is logged.
Functions take ids and read the state when they run, like the tasks do.

on_commit is the one way a change asks for one: after the commit it sends the
`notification_requested` signal with the function's name and arguments;
provisioning connects a receiver that publishes a Celery task, so the worker
renders and sends the mail (and the chat posts), never the web request. When
no receiver takes it (none connected, or the broker is down) it is sent here,
at once, so nothing is lost.
"""

import logging
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse

from accounts_app import approval_rules, chat, selectors
from accounts_app.models import (
    AccessRequest,
    AccessReview,
    OperationRole,
    RequestStatus,
)

log = logging.getLogger(__name__)


# Sent after commit with name= (one of DELIVERABLE) and args= (ids, JSON);
# a receiver answers True when it took the notification (queued it).
notification_requested = Signal()

# What a notification may be asked for by name (the worker's task calls only
# these): every function below that on_commit is given.
DELIVERABLE = frozenset(
    {
        "request_created",
        "request_auto_approved",
        "approval_partial",
        "break_glass_used",
        "break_glass_overdue",
        "break_glass_flagged",
        "review_started",
        "review_reminder",
        "request_decided",
        "grant_ended",
        "grants_active",
        "grant_readiness",
    }
)


def on_commit(function, *args) -> None:
    """Have `function(*args)` (a notification of DELIVERABLE; ids as args)
    sent once the current transaction commits: by the worker, or here when
    none can take it."""
    if function.__name__ not in DELIVERABLE:
        raise ValueError(f"{function.__name__} is not a notification")
    # robust: an error while mailing is logged and never reaches the caller,
    # whose change is already committed.
    transaction.on_commit(partial(deliver, function.__name__, *args), robust=True)


def deliver(name: str, *args) -> None:
    """Ask a receiver (provisioning's Celery task) for notification `name`;
    send it here when no receiver took it."""
    answers = notification_requested.send_robust(
        sender=None, name=name, args=list(args)
    )
    if any(taken is True for _, taken in answers):
        return
    log.info("notification %s%s sent by this process", name, tuple(args))
    send(name, list(args))


def send(name: str, args: list) -> int:
    """Send notification `name` now; only a name of DELIVERABLE (the
    worker's task passes on what the broker says)."""
    if name not in DELIVERABLE:
        raise ValueError(f"{name!r} is not a notification")
    return globals()[name](*args)


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


def _chat(req: AccessRequest, text: str, url: str) -> None:
    """The same news to the project's chat webhooks, if it has any."""
    if req.ticket:
        text += f" Ticket: {req.ticket_url or req.ticket}."
    chat.post(req.role.project, f"[opsgate] {text} {url}")


def _who(req: AccessRequest) -> str:
    return f"{req.role.project.name} as {req.role.os_user}"


def _requester_email(req: AccessRequest) -> str:
    return req.requester.user.email or req.requester.email


_RELATED = ("role__project", "role__account", "requester__user", "decided_by")


def _load(request_id: int, related=(*_RELATED, "ended_by")) -> AccessRequest:
    """The request as it is now, with what the e-mails name (`related`)."""
    return AccessRequest.objects.select_related(*related).get(pk=request_id)


def _still(req: AccessRequest, name: str, holds: bool) -> bool:
    """Whether what the mail says still holds when the worker sends it (it
    may send it a while after the change, behind the syncs): a request
    decided or cancelled meanwhile asks nobody to decide it, a grant ended
    meanwhile is not announced as usable."""
    if not holds:
        log.info("notification %s of request %s: outdated, not sent", name, req.pk)
    return holds


def request_created(request_id: int) -> int:
    """New request → the role's approvers (never the requester)."""
    req = _load(request_id)
    if not _still(req, "request_created", req.status == RequestStatus.PENDING):
        return 0
    approvers = approval_rules.role_approvers(req.role).exclude(
        pk=req.requester.user_id
    )
    hours = f"{req.duration_hours} h" if req.duration_hours else "no time limit"
    _chat(
        req,
        f"{req.requester.name} asks for {_who(req)} ({hours}): {req.reason}",
        _url("approvals"),
    )
    return _send(
        "request_created",
        {"req": req, "url": _url("approvals")},
        [a.email for a in approvers],
    )


def request_auto_approved(request_id: int) -> int:
    """Auto-approved → the role's approvers are told (no decision needed)."""
    req = _load(request_id)
    rule = req.auto_rule.name if req.auto_rule else "an auto-approval rule"
    _chat(
        req,
        f"{req.requester.name} got {_who(req)} for {req.duration_hours} h, "
        f"auto-approved by rule {rule}: {req.reason}",
        _url("approvals"),
    )
    approvers = approval_rules.role_approvers(req.role).exclude(
        pk=req.requester.user_id
    )
    return _send(
        "request_auto_approved",
        {"req": req, "rule": rule, "url": _url("approvals")},
        [a.email for a in approvers],
    )


def approval_partial(request_id: int) -> int:
    """One approval of several → the requester and the approvers who have not
    approved yet ("1 of 2 approvals, by alice")."""
    req = _load(request_id)
    if not _still(req, "approval_partial", req.status == RequestStatus.PENDING):
        return 0
    given = list(req.approvals.select_related("approver"))
    others = approval_rules.role_approvers(req.role).exclude(
        pk__in=[req.requester.user_id, *(a.approver_id for a in given)]
    )
    return _send(
        "approval_partial",
        {
            "req": req,
            "count": len(given),
            "by": [a.approver.get_username() for a in given],
            "url": _url("approvals"),
        },
        [_requester_email(req), *(a.email for a in others)],
    )


def _admins_and_approvers(req: AccessRequest) -> list[str]:
    admins = get_user_model().objects.filter(is_active=True, is_staff=True)
    approvers = approval_rules.role_approvers(req.role)
    # The project's approvers too, even where the role has its own.
    project = req.role.project.approvers.filter(is_active=True)
    everyone = [*admins, *approvers, *project]
    return [u.email for u in everyone if u.pk != req.requester.user_id]


def break_glass_used(request_id: int) -> int:
    """A break-glass use → every approver of the role and every admin, at once."""
    req = _load(request_id)
    _chat(
        req,
        f"BREAK-GLASS: {req.requester.name} activated {_who(req)} until "
        f"{req.expires_at:%H:%M} UTC without approval: {req.reason}. An approver "
        f"must review it by {req.break_glass_review.due_at:%Y-%m-%d %H:%M} UTC.",
        _url("approvals"),
    )
    return _send(
        "break_glass_used",
        {"req": req, "review": req.break_glass_review, "url": _url("approvals")},
        _admins_and_approvers(req),
    )


def break_glass_overdue(request_id: int) -> int:
    """A break-glass use nobody reviewed in time → approvers and admins."""
    req = _load(request_id)
    _chat(
        req,
        f"Break-glass review overdue: {req.requester.name}'s use of {_who(req)} "
        f"was due for review at {req.break_glass_review.due_at:%Y-%m-%d %H:%M} UTC.",
        _url("approvals"),
    )
    return _send(
        "break_glass_overdue",
        {"req": req, "review": req.break_glass_review, "url": _url("approvals")},
        _admins_and_approvers(req),
    )


def break_glass_flagged(request_id: int) -> int:
    """An approver flagged a break-glass use → the admins."""
    req = _load(request_id)
    admins = get_user_model().objects.filter(is_active=True, is_staff=True)
    return _send(
        "break_glass_flagged",
        {"req": req, "review": req.break_glass_review, "url": _url("dashboard")},
        [a.email for a in admins],
    )


def review_started(review_id: int, *, template: str = "review_started") -> int:
    """An access review started → the approvers of the grants under review
    (for the reminder: of those still undecided)."""
    review = AccessReview.objects.get(pk=review_id)
    items = review.items.all()
    if template == "review_reminder":
        items = items.filter(decision="")
    roles = OperationRole.objects.filter(requests__review_items__in=items).distinct()
    emails = set()
    for role in roles.select_related("project"):
        emails |= {u.email for u in approval_rules.role_approvers(role)}
    return _send(
        template, {"review": review, "url": _url("access_reviews")}, sorted(emails)
    )


def review_reminder(review_id: int) -> int:
    """A day before the deadline → the approvers with undecided grants."""
    return review_started(review_id, template="review_reminder")


def request_decided(request_id: int) -> int:
    """Approved or rejected → the requester."""
    # Sent at the end of every decision: only the relations its text names.
    req = _load(request_id, ("role__project", "requester__user", "decided_by"))
    # The decision, not the status now: the worker may send this after the
    # grant ended (it takes the syncs first), and the approver did not end it.
    decision = (
        RequestStatus.REJECTED
        if req.status == RequestStatus.REJECTED
        else RequestStatus.APPROVED
    )
    by = req.decided_by.get_username() if req.decided_by else "opsgate"
    _chat(
        req,
        f"{by} {decision.label.lower()} {req.requester.name}'s "
        f"request for {_who(req)}.",
        _url("approvals"),
    )
    return _send(
        "request_decided",
        {"req": req, "decision": decision, "url": _url("home")},
        [_requester_email(req)],
    )


def grant_ended(request_id: int) -> int:
    """A grant was revoked or expired → the requester (issue 13)."""
    req = _load(request_id)
    return _send(
        "grant_ended",
        {"req": req, "url": _url("request_access")},
        [_requester_email(req)],
    )


# What the grant_active mail and its connection details (grant_connection) name.
_GRANT_RELATED = (
    "role__project",
    "role__account",
    "requester__account",
    "requester__user",
)


def grants_active(request_ids: list[int]) -> int:
    """The role's trust lists the requester → how to connect."""
    sent = 0
    for pk in request_ids:
        req = _load(pk, _GRANT_RELATED)
        if not _still(req, "grant_active", req.is_active_grant):
            continue
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


def grant_readiness(request_id: int) -> int:
    """A grant's readiness check finished (issue 25) → the requester: Ready,
    or Not ready with each failed check and what to do (sent once per
    outcome; see accounts_app.services.readiness.readiness_record)."""
    req = _load(request_id)
    return _send(
        "grant_readiness",
        {
            "req": req,
            "failed": [c for c in req.readiness_checks if not c.get("ok")],
            "connection": selectors.grant_connection(req),
            "url": _url("home"),
        },
        [_requester_email(req)],
    )


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

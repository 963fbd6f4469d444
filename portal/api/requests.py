"""API: the caller's access requests (create, list, read, status, cancel)."""

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query
from ninja.responses import Status

from accounts_app import selectors
from accounts_app.models import (
    IamUser,
    IamUserState,
    OperationRole,
    RequestStatus,
)
from accounts_app.services import access_requests, break_glass, readiness
from portal.api import schemas as s
from portal.api.app import PK, _my_requests, _page, _r, api
from portal.api.core import (
    ApiProblem,
    require_scope,
)


@api.post("/requests", response=_r({201: s.RequestOut}), tags=["requests"])
def request_create(request: HttpRequest, payload: s.RequestIn):
    """Ask for a project's OS user for some hours (what "Request access" does),
    optionally with a ticket and a scheduled start; or, with `break_glass`,
    activate it at once (the page's break-glass form)."""
    require_scope(request, "request")
    person = (
        IamUser.objects.filter(user=request.user, state=IamUserState.ACTIVE)
        .select_related("account")
        .first()
    )
    if person is None:
        raise ApiProblem(
            403,
            "You have no IAM user in opsgate yet, so you cannot ask for access. "
            "Ask an admin to add you.",
        )
    role = _find_role(payload)
    requester = selectors.person_for_role(request.user, role) or person
    if payload.break_glass:
        _break_glass_only(payload)
        req = break_glass.break_glass_activate(
            requester=requester, role=role, reason=payload.reason, actor=request.user
        )
    else:
        req = access_requests.access_request_create(
            requester=requester,
            role=role,
            reason=payload.reason,
            duration_hours=payload.duration_hours,
            actor=request.user,
            ticket=payload.ticket,
            starts_at=payload.starts_at,
        )
    return Status(201, s.RequestOut.of(_my_requests(request).get(pk=req.pk)))


def _break_glass_only(payload: s.RequestIn) -> None:
    """Break-glass has its own length and starts now: fields that would be
    ignored are refused, so nobody believes they were applied."""
    extra = {
        "duration_hours": payload.duration_hours is not None,
        "ticket": bool(payload.ticket),
        "starts_at": payload.starts_at is not None,
    }
    given = [name for name, set_ in extra.items() if set_]
    if given:
        message = (
            "Break-glass lasts the project's break-glass hours and starts now: "
            "give no duration, ticket or start."
        )
        raise ApiProblem(400, message, errors={name: [message] for name in given})


def _field(field: str, message: str) -> ApiProblem:
    return ApiProblem(400, message, errors={field: [message]})


def _find_role(payload: s.RequestIn) -> OperationRole:
    """The role a (project, OS user, account name or id) names. Roles are per
    account: when the OS user exists in several, the caller must choose."""
    roles = OperationRole.objects.filter(project__name=payload.project)
    if not roles.exists():
        raise _field("project", f"No project named “{payload.project}”.")
    account = (payload.account or "").strip()
    if account:
        in_account = roles.filter(
            Q(account__name=account) | Q(account__account_id=account)
        )
        if not in_account.exists():
            raise _field(
                "account",
                f"{payload.project} has no role in an AWS account named or "
                f"numbered “{account}” (it has: {_accounts_of(roles)}).",
            )
        roles = in_account
    matching = list(
        roles.filter(os_user=payload.os_user)
        .select_related("project", "account")
        .order_by("account__name", "account__account_id", "pk")
    )
    if not matching:
        users = ", ".join(sorted(set(roles.values_list("os_user", flat=True))))
        raise _field(
            "os_user",
            f"{payload.project} has no OS user “{payload.os_user}” ({users}).",
        )
    if len({r.account_id for r in matching}) > 1:
        choices = ", ".join(
            f"{r.account.name} ({r.account.account_id})" for r in matching
        )
        raise _field(
            "account",
            f"{payload.project} as {payload.os_user} exists in several AWS "
            f"accounts: choose one by name or id: {choices}.",
        )
    if len(matching) > 1:  # the same name in one account: projects differ
        raise _field("project", f"Several projects named “{payload.project}” share it.")
    return matching[0]


def _accounts_of(roles) -> str:
    rows = (
        roles.values_list("account__name", "account__account_id")
        .distinct()
        .order_by("account__name")
    )
    return ", ".join(f"{name} ({number})" for name, number in rows)


@api.get("/requests", response=_r({200: s.RequestPage}), tags=["requests"])
def request_list(
    request: HttpRequest,
    status: RequestStatus | None = None,
    project: str | None = Query(None, max_length=256, pattern=s.NO_NUL),
    page: int = Query(1, ge=1, le=100000),
):
    """My requests, newest first, 50 a page."""
    require_scope(request, "read")
    rows = _my_requests(request).order_by("-created_at", "-pk")
    if status:
        rows = rows.filter(status=status)
    if project:
        rows = rows.filter(role__project__name=project)
    items, meta = _page(rows, page)
    return {**meta, "items": [s.RequestOut.of(r) for r in items]}


@api.get("/requests/{pk}", response=_r({200: s.RequestOut}), tags=["requests"])
def request_get(request: HttpRequest, pk: PK):
    require_scope(request, "read")
    return s.RequestOut.of(get_object_or_404(_my_requests(request), pk=pk))


@api.get("/requests/{pk}/status", response=_r({200: s.StatusOut}), tags=["requests"])
def request_status(request: HttpRequest, pk: PK):
    """The live status the My access page polls: `final` once nothing moves."""
    require_scope(request, "read")
    req = get_object_or_404(_my_requests(request), pk=pk)
    display = selectors.request_display(req)
    return {
        "id": req.pk,
        "status": req.status,
        "state": display.key,
        "label": display.label,
        "detail": display.detail,
        "final": display.is_final,
    }


@api.post("/requests/{pk}/cancel", response=_r({200: s.RequestOut}), tags=["requests"])
def request_cancel(request: HttpRequest, pk: PK):
    require_scope(request, "request")
    req = get_object_or_404(_my_requests(request), pk=pk)
    access_requests.access_request_cancel(access_request=req, actor=request.user)
    return s.RequestOut.of(_my_requests(request).get(pk=pk))


@api.post("/requests/{pk}/check", response=_r({202: s.RequestOut}), tags=["requests"])
def request_check(request: HttpRequest, pk: PK):
    """ "Check again": read back what AWS holds for one of my active grants
    (its readiness becomes `checking`, then `ready` or `not_ready`)."""
    require_scope(request, "request")
    req = get_object_or_404(_my_requests(request), pk=pk)
    readiness.grant_check_request(grant=req, actor=request.user)
    return Status(202, s.RequestOut.of(_my_requests(request).get(pk=pk)))

"""The REST API under /api/v1/: the same services, permission rules and audit
rows as the pages, with the token's owner as the actor."""

import math
from typing import Annotated

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Path, Query
from ninja.responses import Status

from accounts_app import approval_rules, selectors
from accounts_app.client_ip import client_ip
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, break_glass, tokens
from portal.api import schemas as s
from portal.api.core import (
    DEVICE_STARTS_PER_MINUTE,
    ERRORS,
    ApiProblem,
    OpsgateApi,
    StrictJsonParser,
    TokenAuth,
    install_handlers,
    rate_limit,
    require_scope,
    require_staff,
)
from portal.api.totp import check_totp
from portal.forms import AuditFilterForm
from portal.staff_views import audit_filter
from provisioning import direct

PAGE_SIZE = 50
PK = Annotated[int, Path(ge=1, le=2**31 - 1)]

api = OpsgateApi(
    title="opsgate API",
    version="1",
    description=(
        "Access requests, approvals and grants for AWS operators. Authenticate "
        "with `Authorization: Bearer <personal access token>` (portal → API "
        "tokens, or `opsgate login`). Errors are RFC 9457 problem details."
    ),
    auth=TokenAuth(),
    parser=StrictJsonParser(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_handlers(api)


def _r(codes: dict) -> dict:
    return {**ERRORS, **codes}


def _page(rows, page: int, size: int = PAGE_SIZE) -> tuple[list, dict]:
    count = rows.count()
    pages = max(1, math.ceil(count / size))
    start = (page - 1) * size
    return list(rows[start : start + size]), {
        "count": count,
        "page": page,
        "pages": pages,
    }


def _my_requests(request: HttpRequest):
    return AccessRequest.objects.filter(requester__user=request.user).select_related(
        "role__project", "role__account", "requester", "decided_by"
    )


# --- Me -------------------------------------------------------------------------


@api.get("/me", response=_r({200: s.MeOut}), tags=["me"])
def me(request: HttpRequest):
    """Who this token acts as."""
    require_scope(request, "read")
    user = request.user
    person = IamUser.objects.filter(user=user, state=IamUserState.ACTIVE).first()
    return {
        "login": user.get_username(),
        "email": user.email,
        "is_staff": user.is_staff,
        "approver_of": sorted(p.name for p in user.approver_of.all()),
        "iam_user_name": person.name if person else None,
        "token_name": request.auth.name,
        "token_scopes": request.auth.scopes,
        "token_expires_at": request.auth.expires_at,
    }


@api.post("/me/logout", response=_r({204: None}), tags=["me"])
def logout(request: HttpRequest):
    """Revoke the token making this call (`opsgate logout`)."""
    tokens.token_revoke(token=request.auth, actor=request.user, reason="logout")
    return Status(204, None)


# --- Requests ---------------------------------------------------------------------


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


# --- Approvals ----------------------------------------------------------------------


def _in_my_projects(request: HttpRequest):
    """Requests I may decide: the approval page's rule (a role's own
    approvers, and the project's unless the role replaces them)."""
    return (
        AccessRequest.objects.filter(approval_rules.decidable_by(request.user))
        .select_related("role__project", "role__account", "requester", "decided_by")
    )


@api.get("/approvals", response=_r({200: s.RequestPage}), tags=["approvals"])
def approvals(request: HttpRequest, page: int = Query(1, ge=1, le=100000)):
    """Pending requests I may decide (projects and roles I approve), oldest
    first."""
    require_scope(request, "read")
    if not approval_rules.is_approver(request.user):
        raise ApiProblem(403, "You approve no project.")
    rows = (
        _in_my_projects(request)
        .filter(status=RequestStatus.PENDING)
        .order_by("created_at", "pk")
    )
    items, meta = _page(rows, page)
    return {**meta, "items": [s.RequestOut.of(r) for r in items]}


def _decide(request: HttpRequest, pk: PK, payload, service) -> dict:
    require_scope(request, "approve")
    req = get_object_or_404(_in_my_projects(request), pk=pk)
    check_totp(request, payload.totp)
    service(access_request=req, approver=request.user, comment=payload.comment)
    return s.RequestOut.of(_in_my_projects(request).get(pk=pk))


@api.post(
    "/approvals/{pk}/approve", response=_r({200: s.RequestOut}), tags=["approvals"]
)
def approve(request: HttpRequest, pk: PK, payload: s.DecisionIn):
    return _decide(request, pk, payload, access_requests.access_request_approve)


@api.post(
    "/approvals/{pk}/reject", response=_r({200: s.RequestOut}), tags=["approvals"]
)
def reject(request: HttpRequest, pk: PK, payload: s.RejectIn):
    return _decide(request, pk, payload, access_requests.access_request_reject)


# --- Grants -------------------------------------------------------------------------


@api.get("/grants", response=_r({200: list[s.GrantOut]}), tags=["grants"])
def grants(request: HttpRequest):
    """My active grants with what it takes to connect: role ARN, the
    ~/.aws/config profile (the My access page's own), and the EC2 instances
    of the project in the role's account."""
    require_scope(request, "read")
    rows = list(
        AccessRequest.active_grants()
        .filter(requester__user=request.user)
        .select_related("role__project__account", "role__account", "requester__account")
        .order_by("expires_at", "pk")
    )
    roles = sorted({g.role for g in rows}, key=lambda r: r.pk)
    instances = direct.instances_by_role(roles) if roles else {}
    return [_grant(g, *instances[g.role_id]) for g in rows]


def _grant(grant: AccessRequest, found, error: str) -> dict:
    running = [i for i in found if i.state == "running"]
    target = (running or found or [None])[0]
    conn = selectors.grant_connection(
        grant, instance_id=target.instance_id if target else ""
    )
    return {
        **s.RequestOut.of(grant),
        "role_arn": conn.role_arn,
        "profile_name": conn.profile_name,
        "mfa_serial": conn.mfa_serial,
        "source_profile": conn.source_profile,
        "role_session_name": conn.role_session_name,
        "region": conn.region,
        "switch_role_url": conn.switch_role_url,
        "aws_config": conn.aws_config,
        "ssm_command": conn.ssm_command,
        "instances": [
            {"instance_id": i.instance_id, "name": i.name, "state": i.state}
            for i in found
        ],
        "instances_error": error,
    }


@api.post("/grants/{pk}/end", response=_r({200: s.RequestOut}), tags=["grants"])
def grant_end(request: HttpRequest, pk: PK):
    """ "I'm done": end my own grant now."""
    require_scope(request, "request")
    req = get_object_or_404(_my_requests(request), pk=pk)
    access_requests.access_request_revoke(
        access_request=req, actor=request.user, comment="Done (by the requester)."
    )
    return s.RequestOut.of(_my_requests(request).get(pk=pk))


# --- Staff reads --------------------------------------------------------------------


@api.get("/people", response=_r({200: s.PersonPage}), tags=["admin"])
def people(
    request: HttpRequest,
    q: str = Query("", max_length=200, pattern=s.NO_NUL),
    page: int = Query(1, ge=1, le=100000),
):
    """Everyone with an IAM user; `q` searches like the People page."""
    require_staff(request)
    rows = IamUser.objects.select_related("user", "account").order_by("name", "pk")
    q = q.strip()
    if q:
        rows = rows.filter(
            Q(name__icontains=q)
            | Q(email__icontains=q)
            | Q(user__email__icontains=q)
            | Q(user__first_name__icontains=q)
            | Q(user__last_name__icontains=q)
        )
    items, meta = _page(rows, page)
    return {
        **meta,
        "items": [
            {
                "id": p.pk,
                "iam_user_name": p.name,
                "login": p.user.get_username(),
                "email": p.email or p.user.email,
                "name": p.user.get_full_name(),
                "account": p.account.name,
                "state": p.state,
                "is_staff": p.user.is_staff,
                "sync_status": p.sync_status,
            }
            for p in items
        ],
    }


def _role(role: OperationRole) -> dict:
    return {
        "id": role.pk,
        "project": role.project.name,
        "project_id": role.project_id,
        "os_user": role.os_user,
        "role_name": role.role_name,
        "account": role.account.name,
        "arn": role.arn,
        "sync_status": role.sync_status,
        "last_error": role.last_error,
    }


@api.get("/projects", response=_r({200: list[s.ProjectOut]}), tags=["admin"])
def projects(request: HttpRequest):
    require_staff(request)
    rows = Project.objects.select_related("account").prefetch_related(
        "approvers", "roles__account", "roles__project"
    )
    return [
        {
            "id": p.pk,
            "name": p.name,
            "account": p.account.name,
            "description": p.description,
            "approvers": sorted(u.get_username() for u in p.approvers.all()),
            "durations": p.durations,
            "allow_permanent": p.allow_permanent,
            "roles": [_role(r) for r in p.roles.all()],
        }
        for p in rows.order_by("name", "pk")
    ]


@api.get("/roles", response=_r({200: list[s.RoleOut]}), tags=["admin"])
def roles(request: HttpRequest, project: int | None = Query(None, ge=1, le=2**31 - 1)):
    require_staff(request)
    rows = OperationRole.objects.select_related("project", "account")
    if project:
        rows = rows.filter(project_id=project)
    return [_role(r) for r in rows]


@api.get("/audit", response=_r({200: s.AuditPage}), tags=["admin"])
def audit(request: HttpRequest, filters: Query[s.AuditFilters]):
    """The audit log with the Audit log page's filters (the same form checks
    them: an unknown project or kind is a field error)."""
    require_staff(request)
    data = {
        k: ("" if v is None else str(v))
        for k, v in filters.dict().items()
        if k != "page"
    }
    form = AuditFilterForm(data)
    if not form.is_valid():
        errors = {f: list(m) for f, m in form.errors.items()}
        detail = " ".join(m for msgs in errors.values() for m in msgs)
        raise ApiProblem(400, detail, errors=errors)
    events = audit_filter(AuditEvent.objects.select_related("project"), form)
    items, meta = _page(events, filters.page)
    return {
        **meta,
        "items": [
            {
                "id": e.pk,
                "created_at": e.created_at,
                "actor": e.actor_repr,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "object": e.object_repr,
                "project": e.project.name if e.project else None,
                "before": e.before,
                "after": e.after,
            }
            for e in items
        ],
    }


# --- Device login (`opsgate login`) -------------------------------------------------


@api.post(
    "/device/start",
    auth=None,
    response=_r({200: s.DeviceStartOut}),
    tags=["login"],
)
def device_start(request: HttpRequest, payload: s.DeviceStartIn):
    """Step 1 of `opsgate login`: a device code for the CLI, a user code for
    the person to confirm at verification_uri while signed in."""
    rate_limit(
        f"device-start:{client_ip(request)}",
        DEVICE_STARTS_PER_MINUTE,
    )
    device_code, user_code = tokens.device_authorization_start(
        client_name=payload.client_name
    )
    uri = request.build_absolute_uri(reverse("device"))
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": f"{uri}?user_code={user_code}",
        "expires_in": tokens.DEVICE_LOGIN_MINUTES * 60,
        "interval": 2,
    }


@api.post(
    "/device/token",
    auth=None,
    response=_r({200: s.DeviceTokenOut}),
    tags=["login"],
)
def device_token(request: HttpRequest, payload: s.DeviceTokenIn):
    """Step 2, polled: `ok` once with the new token, after the person confirmed."""
    status, secret = tokens.device_authorization_poll(payload.device_code)
    return {"status": status, "token": secret}

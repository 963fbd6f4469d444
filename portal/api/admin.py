"""API: the admins' reads (people, projects, roles, the audit log)."""

from django.db.models import Q
from django.http import HttpRequest
from ninja import Query

from accounts_app.models import (
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
)
from portal.api import schemas as s
from portal.api.app import _page, _r, api
from portal.api.core import (
    ApiProblem,
    require_staff,
)
from portal.forms.audit import AuditFilterForm
from portal.views.audit import audit_filter


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
            "create_os_users": p.create_os_users,
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

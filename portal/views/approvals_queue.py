"""What the approvals pages show (portal.views.approvals): the queue (the
requests waiting for the user, the active grants of their projects) and,
on a page of its own, what they decided; each in a number of queries that
does not grow with the rows.

The roles of the user's projects are read once, with their project and
account; each list then reads its requests joined only to what differs per
row (the requester), and takes its roles from there: joins of seven tables
cost PostgreSQL more to plan than to run."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest
from django.template.backends.utils import csrf_input
from django.utils import timezone
from django.utils.html import format_html

from accounts_app import approval_rules, selectors, trust
from accounts_app.models import (
    AccessRequest,
    Approval,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import break_glass
from portal import params
from portal.forms.approvals import DecidedFilterForm, QueueFilterForm
from portal.views import links
from portal.views.paging import page_counted

PENDING_PAGE = 10  # decision cards: each a form and about 60 lookups to render
# What a card shows (templates/approvals.html, _rules.html) and what the
# trust capacity needs of the requester (trust.iam_user_arn), and no more.
PENDING_SHOWN = (
    "role_id",
    "status",
    "reason",
    "duration_hours",
    "created_at",
    "ticket",
    "approvals_required",
    "starts_at",
    "requester__name",
    "requester__arn",
    "requester__user__username",
    "requester__user__first_name",
    "requester__user__last_name",
    "requester__account__account_id",
    "requester__account__partition",
)
# Grants ending soonest first, 25 a page (`grants` page parameter): a row
# costs a revoke form and a dozen lookups to render.
GRANTS_PAGE = 25
# The columns a grant's row shows (templates/approvals.html), and no more:
# the others cost a conversion each per row (the readiness checks a JSON
# decoding).
GRANT_SHOWN = (
    "role_id",
    "status",
    "break_glass",
    "auto_approved",
    "ticket",
    "starts_at",
    "expires_at",
    "requester__name",
)
# The user's decisions, newest first, 25 a page (their own page).
DECIDED_PAGE = 25


def _approver_lists(request: HttpRequest, form_class) -> tuple:
    """What both approvals pages start from: the projects the user approves
    (403 without one), their roles (with project, account and whether the
    user decides each), the page's filters and the scope they select."""
    approved = approval_rules.approved_by(request.user)
    if not approved.project_ids:
        raise PermissionDenied(
            "Approvals are for the approvers of a project, and you approve "
            "none. An opsgate admin names a project's approvers; to ask for "
            "access yourself, use Request access."
        )
    roles = _roles_of(approved)
    # The accounts of the projects' roles (a project may have roles in several).
    accounts = {role.account_id: role.account.name for role in roles.values()}
    projects = _projects_of(roles, approved)
    filters = form_class(request.GET or None, projects=projects, accounts=accounts)
    scope = Q()
    if filters.is_valid():
        data = filters.cleaned_data
        if data["project"]:
            scope &= Q(role__project_id=data["project"])
        if data["account"]:
            scope &= Q(role__account_id=data["account"])
    elif filters.is_bound:
        scope = Q(pk__in=[])
    return projects, roles, filters, scope


def _filtered(request: HttpRequest, filters) -> bool:
    return filters.is_bound and any(request.GET.get(f) for f in filters.fields)


def approvals_context(request: HttpRequest) -> dict:
    """The queue: what waits for the user, break-glass uses to review and the
    active grants of their projects (their decisions: decided_context)."""
    user = request.user
    projects, roles, filters, scope = _approver_lists(request, QueueFilterForm)
    age = filters.hours() if filters.is_valid() else None
    role_ids = [pk for pk, role in roles.items() if role.decidable]
    mine = approval_rules.decidable_by(user, role_ids)
    page, pending = _pending(request, roles, mine & scope, age)
    # Active grants, and scheduled ones (shown with their window).
    # Paged with a COUNT of its own: with the length on every row PostgreSQL
    # would join every grant to its requester instead of stopping at a page.
    grants_page = Paginator(
        AccessRequest.objects.filter(mine, scope, status=RequestStatus.APPROVED)
        .exclude(expires_at__lte=timezone.now())
        .select_related("requester")
        .only(*GRANT_SHOWN)
        .order_by("expires_at"),
        GRANTS_PAGE,
    ).get_page(params.page(request, "grants"))
    reviews = []
    if any(p.allow_break_glass for p in projects):
        reviews = list(
            break_glass.reviews_open()
            .filter(access_request__role_id__in=role_ids)
            .exclude(access_request__requester__user=user)
        )
    return {
        # One hidden input for every form of the page (the same token as
        # {% csrf_token %} renders, at a fraction of its cost per form).
        "csrf_input": csrf_input(request),
        "filters": filters,
        "filtered": _filtered(request, filters),
        "query": _without(request, "page"),
        "reviews": reviews,
        "projects": projects,
        "pending": pending,
        "page": page,
        "grants": _grant_rows(grants_page.object_list, roles),
        "grants_page": grants_page,
        "grants_query": _without(request, "grants"),
    }


def decided_context(request: HttpRequest) -> dict:
    """The user's decisions, newest first, with how each ended (their own
    page: the queue is read on every visit, the history now and then)."""
    user = request.user
    projects, roles, filters, scope = _approver_lists(request, DecidedFilterForm)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    decided_page = page_counted(
        AccessRequest.objects.filter(scope, decided_by=user)
        .filter(**({"status": status} if status else {}))
        .select_related("requester", "ended_by", "auto_rule")
        .order_by("-decided_at", "-pk"),
        params.page(request),
        DECIDED_PAGE,
    )
    decided = _with_roles(decided_page.object_list, roles)
    for req in decided:
        req.decided_by = user  # the filter's
        req.display = selectors.request_display(req)
        req.note = selectors.request_note(req, user)
    return {
        "filters": filters,
        "filtered": _filtered(request, filters),
        "projects": projects,
        "decided": decided,
        "decided_page": decided_page,
        "query": _without(request, "page"),
    }


def _pending(request: HttpRequest, roles: dict, scope: Q, age: int | None):
    """The page of requests waiting for the user, oldest first, each with
    what its card shows: the trust capacity after approval, whether it is the
    user's own (and whether anyone else can decide it), the quorum so far."""
    user = request.user
    waiting = AccessRequest.objects.filter(scope, status=RequestStatus.PENDING)
    if age:
        waiting = waiting.filter(created_at__lte=timezone.now() - timedelta(hours=age))
    page = page_counted(
        waiting.select_related("requester__user", "requester__account")
        .only(*PENDING_SHOWN)
        .order_by("created_at", "pk"),
        params.page(request),
        PENDING_PAGE,
    )
    pending = _with_roles(page.object_list, roles)
    _approvals_load(pending)
    holders = trust.capacity_holders({req.role_id for req in pending})
    own = {req.role_id: req.role for req in pending if req.requester.user_id == user.pk}
    # The roles of the user's own requests that someone else may decide (the
    # role's approvers as the rules say, its own included: a query a role,
    # only when the page shows one of the user's own requests).
    others = {
        pk
        for pk, role in own.items()
        if approval_rules.role_approver_ids(role) - {user.pk}
    }
    decide_url = links.by_pk("decide")
    for req in pending:
        # What the trust policy would need with this requester in it.
        req.capacity = trust.trust_capacity(
            req.role, extra_user=req.requester, holders=holders[req.role_id]
        )
        req.own = req.requester.user_id == user.pk
        # The decision form with errors, when this request's POST had some.
        # Set here: a missing attribute costs the template a dir() per lookup.
        req.form = None
        req.undecidable = req.own and req.role_id not in others
        req.approved_by = [a.approver.get_username() for a in req.given]
        req.approved_by_me = any(a.approver_id == user.pk for a in req.given)
        req.decide_url = decide_url(req.pk)
    return page, pending


def _grant_rows(grants, roles: dict) -> list:
    """The page of grants, each with its revoke form's URL and labels."""
    grants = _with_roles(grants, roles)
    revoke_url = links.by_pk("approver_revoke")
    for g in grants:
        g.revoke_url = revoke_url(g.pk)
        g.access = format_html(
            "{}'s access to {}", g.requester.name, g.role.project.name
        )
        g.access_as = format_html("{} as {}", g.access, g.role.os_user)
    return grants


def _roles_of(approved: approval_rules.Approved) -> dict[int, OperationRole]:
    """The roles of the projects the user approves by id, by project name,
    each with its project and account, whether the user decides its requests
    (`decidable`) and where it is as the rows show it (built once a role, not
    once a row)."""
    roles = {}
    projects = {}
    for role in (
        OperationRole.objects.filter(project_id__in=approved.project_ids)
        .select_related("account", "project")
        .order_by("project__name", "pk")
    ):
        # One project object for all its roles.
        role.project = projects.setdefault(role.project_id, role.project)
        role.decidable = approved.decides(role)
        roles[role.pk] = _placed(role)
    return roles


def _projects_of(roles: dict, approved: approval_rules.Approved) -> list[Project]:
    """The projects the user approves, by name: those of their roles, read
    with them; all of them in one more query when one has no role yet."""
    projects = list({role.project_id: role.project for role in roles.values()}.values())
    if len(projects) == len(approved.project_ids):
        return projects
    projects = list(
        Project.objects.filter(pk__in=approved.project_ids).order_by("name")
    )
    by_pk = {p.pk: p for p in projects}
    for role in roles.values():
        role.project = by_pk[role.project_id]
    return projects


def _placed(role: OperationRole) -> OperationRole:
    """The role with `where`: its project and account, as each row shows them."""
    role.where = format_html(
        '{} <span class="muted account">in {} <code>{}</code></span>',
        role.project.name,
        role.account.name,
        role.account.account_id,
    )
    return role


def _with_roles(rows, roles: dict) -> list:
    """The requests with their roles from `roles`; the roles of projects the
    user no longer approves (their past decisions) in one more query."""
    rows = list(rows)
    missing = {req.role_id for req in rows} - roles.keys()
    if missing:
        more = OperationRole.objects.select_related("project", "account")
        roles = {**roles, **{pk: _placed(r) for pk, r in more.in_bulk(missing).items()}}
    for req in rows:
        req.role = roles[req.role_id]
    return rows


def _approvals_load(pending: list) -> None:
    """The approvals of the requests that need several, in one query (none
    when no project uses a quorum)."""
    quorum = {req.pk: req for req in pending if req.approvals_required > 1}
    for req in pending:
        req.given = []
    if quorum:
        given = Approval.objects.filter(access_request__in=quorum).select_related(
            "approver"
        )
        for approval in given:
            quorum[approval.access_request_id].given.append(approval)


def _without(request: HttpRequest, name: str) -> str:
    """The query string less one page parameter (the pagers add it back)."""
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()

"""Admin pages about projects and their operation roles: the list, a
project's page, a role's rules, editing and retrying (a project's settings:
portal.views.project_settings)."""

from collections import Counter, defaultdict

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts_app import selectors, sync_requests, trust
from accounts_app.models import (
    OperationRole,
    Project,
)
from accounts_app.services import projects as project_services
from accounts_app.services import roles as role_services
from accounts_app.services import rules as rules_services
from portal import params
from portal.forms.base import add_service_errors
from portal.forms.projects import (
    AutoRuleForm,
    ProjectEditForm,
    ProjectFilterForm,
    ProjectForm,
    RoleForm,
    RolePrincipalsForm,
    RoleRulesForm,
)
from portal.views import links
from portal.views.paging import page_of
from portal.views.staff import (
    PAGE_SIZE,
    _back,
    _default_account_or_message,
    staff_required,
)


@staff_required
def projects(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = _default_account_or_message(request)
        if account is not None:
            data = form.cleaned_data
            try:
                project = project_services.project_create(
                    actor=request.user,
                    name=data["name"],
                    account=account,
                    approvers=list(data["approvers"]),
                    description=data["description"],
                    allowed_durations=data["allowed_durations"],
                    allow_permanent=data["allow_permanent"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request, f"Project {project.name} created. Now add its OS users."
                )
                return redirect("project_detail", pk=project.pk)
    filters = ProjectFilterForm(request.GET or None)
    rows = Project.objects.select_related("account").order_by("name", "pk")
    if filters.is_valid():
        data = filters.cleaned_data
        if data["q"]:
            rows = rows.filter(
                Q(name__icontains=data["q"]) | Q(description__icontains=data["q"])
            )
        if data["account"]:
            rows = rows.filter(account=data["account"])
        if data["approver"]:
            rows = rows.filter(
                Q(approvers__email__iexact=data["approver"])
                | Q(approvers__username__iexact=data["approver"])
            ).distinct()
    elif filters.is_bound:
        rows = rows.none()
    page = page_of(rows, request, PAGE_SIZE)
    shown = list(page.object_list)
    _names_load(shown)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "staff/projects.html",
        {
            "projects": shown,
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "form": form,
        },
    )


def _names_load(projects: list[Project]) -> None:
    """Each project's link, approvers (user names, comma-separated), OS
    users and durations, as text made here: a query each for the approvers
    and OS users, and no {% url %} or filter a row in the template, which
    cost more than the rest of the page."""
    ids = [project.pk for project in projects]
    approvers = selectors.approvers_of(Project.approvers, ids)
    os_users = defaultdict(list)
    roles = OperationRole.objects.filter(project__in=ids).order_by("os_user")
    for project_id, os_user in roles.values_list("project_id", "os_user"):
        # Once each: a project's roles in several accounts may share one.
        if os_user not in os_users[project_id]:
            os_users[project_id].append(os_user)
    project_url = links.by_pk("project_detail")
    for project in projects:
        project.url = project_url(project.pk)
        project.approver_names = ", ".join(a.username for a in approvers[project.pk])
        project.os_users = os_users[project.pk]
        project.durations_text = ", ".join(map(str, project.durations))


@staff_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("account"), pk=pk)
    form = RoleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            role = role_services.role_create(
                actor=request.user,
                project=project,
                os_user=data["os_user"],
                role_name=data["role_name"],
                extra_principal_arns=data["extra_principal_arns"],
                account=data.get("account"),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Role {role.role_name} added.")
            return redirect("project_detail", pk=pk)
    return _project_detail_page(request, project, form=form)


def _project_detail_page(
    request: HttpRequest, project: Project, *, form=None
) -> HttpResponse:
    """The project's facts and roles and the form that adds one. Its
    settings (approval rules, break-glass, chat) are on their own page
    (project_settings), seldom changed, not rendered on each view of this
    one."""
    form = form or RoleForm()
    rows = project.roles.select_related("account").order_by("os_user", "pk")
    page = page_of(rows, request, PAGE_SIZE)
    roles = list(page.object_list)
    ids, now = [role.pk for role in roles], timezone.now()
    # One read of the grants for both columns: the active ones (started)
    # and the trust's holders (scheduled ones included).
    held = trust.holding(ids, now).values_list("role_id", "requester_id", "starts_at")
    held = list(held)
    grants = Counter(role for role, _, start in held if start is None or start <= now)
    holders = trust.holders_of(ids, [(role, person) for role, person, _ in held])
    approvers = selectors.approvers_of(OperationRole.approvers, ids)
    for role in roles:
        role.capacity = trust.trust_capacity(role, holders=holders[role.pk])
        role.grant_count = grants[role.pk]
        role.approver_names = ", ".join(a.username for a in approvers[role.pk])
    return render(
        request,
        "staff/project_detail.html",
        {
            "project": project,
            "roles": roles,
            "page": page,
            "form": form,
        },
    )


@staff_required
def role_rules(request: HttpRequest, pk: int) -> HttpResponse:
    role = get_object_or_404(OperationRole.objects.select_related("project"), pk=pk)
    initial = {
        "approvers": ", ".join(a.get_username() for a in role.approvers.all()),
        "approvers_replace_project": role.approvers_replace_project,
        "approvals_required": role.approvals_required or "",
    }
    form = RoleRulesForm(
        request.POST if "save_rules" in request.POST else None, initial=initial
    )
    auto_form = AutoRuleForm(request.POST if "add_rule" in request.POST else None)
    if "remove_rule" in request.POST:
        rule = get_object_or_404(
            role.auto_rules, pk=params.integer(request.POST.get("remove_rule"))
        )
        rules_services.auto_rule_remove(actor=request.user, rule=rule)
        messages.success(request, f"Auto-approval rule {rule.name} removed.")
        return redirect("role_rules", pk=pk)
    if auto_form.is_bound and auto_form.is_valid():
        try:
            rule = rules_services.auto_rule_add(
                actor=request.user, role=role, **auto_form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(auto_form, exc)
        else:
            messages.success(request, f"Auto-approval rule {rule.name} added.")
            return redirect("role_rules", pk=pk)
    if form.is_bound and form.is_valid():
        try:
            rules_services.role_rules_set(
                actor=request.user, role=role, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Approval rules of {role.role_name} saved.")
            return redirect("project_detail", pk=role.project_id)
    return render(
        request,
        "staff/role_rules.html",
        {
            "role": role,
            "form": form,
            "auto_form": auto_form,
            "auto_rules": role.auto_rules.select_related("created_by").prefetch_related(
                "people"
            ),
        },
    )


@staff_required
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("account"), pk=pk)
    form = ProjectEditForm(
        request.POST or None, initial=ProjectEditForm.initial_for(project)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project_services.project_update(
                actor=request.user,
                project=project,
                approvers=list(data["approvers"]),
                description=data["description"],
                allowed_durations=data["allowed_durations"],
                allow_permanent=data["allow_permanent"],
                rejection_reason_optional=data["rejection_reason_optional"],
                create_os_users=data["create_os_users"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Project {project.name} saved.")
            return redirect("project_detail", pk=pk)
    return render(
        request, "staff/project_edit.html", {"project": project, "form": form}
    )


@staff_required
def role_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The role's cross-account users, through the same service as the
    Django admin (trust size checked under the role's lock, audit, sync)."""
    role = get_object_or_404(
        OperationRole.objects.select_related("project", "account"), pk=pk
    )
    form = RolePrincipalsForm(
        request.POST or None,
        initial={"extra_principal_arns": "\n".join(role.extra_principal_arns or [])},
    )
    if request.method == "POST" and form.is_valid():
        try:
            role_services.role_principals_set(
                role=role,
                extra_principal_arns=form.cleaned_data["extra_principal_arns"],
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Saved the cross-account users of {role.role_name}. opsgate is "
                "updating its trust in AWS.",
            )
            return redirect("project_detail", pk=role.project_id)
    return render(request, "staff/role_edit.html", {"role": role, "form": form})


@staff_required
@require_POST
def role_retry(request: HttpRequest, pk: int) -> HttpResponse:
    role = get_object_or_404(OperationRole, pk=pk)
    sync_requests.sync_retry(obj=role, actor=request.user)
    messages.success(request, f"Asked the worker to sync {role.role_name} again.")
    return _back(request, "project_detail", role.project_id)

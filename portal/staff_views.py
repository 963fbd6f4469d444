"""Admin (staff) pages: people, projects and roles, the audit log."""

import csv
import json
import re
from collections import Counter
from datetime import datetime, time
from functools import wraps
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts_app import invitations, selectors, sync_requests, trust
from accounts_app.models import (
    AccessRequest,
    AccessReview,
    AuditEvent,
    AwsAccount,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
)
from accounts_app.services import access_reviews, accounts, break_glass, people
from accounts_app.services import projects as project_services
from accounts_app.services import roles as role_services
from accounts_app.services import rules as rules_services
from portal import params
from portal.forms import (
    AccessReviewForm,
    AuditFilterForm,
    AutoRuleForm,
    AwsAccountForm,
    BreakGlassSettingsForm,
    DiscoverForm,
    DriftFilterForm,
    OffboardForm,
    PersonForm,
    ProjectEditForm,
    ProjectFilterForm,
    ProjectForm,
    ProjectRulesForm,
    RoleForm,
    RolePrincipalsForm,
    RoleRulesForm,
    WebhooksForm,
    add_service_errors,
)
from provisioning import direct, organizations
from provisioning import status as sync_status
from provisioning.aws import AwsError

PAGE_SIZE = 25


def staff_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only opsgate admins can open this page.")
        return view(request, *args, **kwargs)

    return wrapper


def _back(request: HttpRequest, default: str, *args) -> HttpResponse:
    """Redirect to the form's `next` (the dashboard's retry buttons) when it
    is a local URL, else to `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default, *args)


def _default_account_or_message(request: HttpRequest):
    try:
        return accounts.account_get_default()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return None


# --- People -------------------------------------------------------------------


@staff_required
@require_GET
def people_list(request: HttpRequest) -> HttpResponse:
    q = params.text(request, "q")
    rows = (
        IamUser.objects.select_related("user", "account")
        .prefetch_related("user__approver_of")
        .order_by("name")
    )
    if q:
        rows = rows.filter(
            Q(name__icontains=q)
            | Q(email__icontains=q)
            | Q(user__email__icontains=q)
            | Q(user__first_name__icontains=q)
            | Q(user__last_name__icontains=q)
        )
    page = Paginator(rows, PAGE_SIZE).get_page(params.page(request))
    return render(request, "staff/people.html", {"page": page, "q": q})


@staff_required
def person_add(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = _default_account_or_message(request)
        if account is not None:
            data = form.cleaned_data
            try:
                person = people.person_add(
                    actor=request.user,
                    account=account,
                    iam_user_name=data["iam_user_name"],
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    is_staff=data["is_staff"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                invited = invitations.invitation_send(
                    person=person,
                    actor=request.user,
                    base_url=request.build_absolute_uri("/"),
                )
                messages.success(
                    request,
                    f"Added {person.name}. opsgate is creating the IAM user."
                    + (
                        f" An invitation to set a password went to {person.email}."
                        if invited
                        else " No invitation was sent (no e-mail address)."
                    ),
                )
                return redirect("person_detail", pk=person.pk)
    return render(request, "staff/person_add.html", {"form": form})


@staff_required
@require_GET
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(IamUser.objects.select_related("user", "account"), pk=pk)
    requests = list(
        AccessRequest.objects.filter(requester=person)
        .select_related(
            "role__project", "requester", "decided_by", "ended_by", "auto_rule"
        )
        .order_by("-created_at")[:50]
    )
    for req in requests:
        req.display = selectors.request_display(req)
        req.note = selectors.request_note(req, request.user)
    return render(
        request, "staff/person_detail.html", {"person": person, "requests": requests}
    )


@staff_required
@require_POST
def person_retry(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(IamUser, pk=pk)
    sync_requests.sync_retry(obj=person, actor=request.user)
    messages.success(request, f"Asked the worker to sync {person.name} again.")
    return _back(request, "person_detail", pk)


@staff_required
@require_POST
def person_invite(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the invitation again (a new link; the old one still works until
    it expires or a password is set)."""
    person = get_object_or_404(IamUser.objects.select_related("user"), pk=pk)
    if person.user.has_usable_password():
        messages.error(
            request,
            f"{person.name} has already set a password: no invitation was sent. "
            "They can use “Forgot your password?” on the sign-in page.",
        )
    elif not person.user.is_active or person.state != IamUserState.ACTIVE:
        messages.error(request, f"{person.name} is offboarded: no invitation sent.")
    elif invitations.invitation_send(
        person=person, actor=request.user, base_url=request.build_absolute_uri("/")
    ):
        messages.success(request, f"Invitation sent again to {person.user.email}.")
    else:
        messages.error(
            request,
            f"No invitation was sent: {person.name} has no e-mail address, or "
            "the mail server refused it (see the web log).",
        )
    return redirect("person_detail", pk=pk)


@staff_required
def person_offboard(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirmation page, then the same service as the Django admin's
    "Offboard" action."""
    person = get_object_or_404(IamUser.objects.select_related("user", "account"), pk=pk)
    if person.state != IamUserState.ACTIVE:
        messages.error(request, f"{person.name} is already offboarded.")
        return redirect("person_detail", pk=pk)
    form = OffboardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            people.person_offboard(
                iam_user=person, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Offboarded {person.name}: their access ended and opsgate is "
                "deleting the IAM user.",
            )
            return redirect("person_detail", pk=pk)
    open_requests = AccessRequest.objects.filter(
        requester=person, status__in=["approved", "pending"]
    )
    return render(
        request,
        "staff/person_offboard.html",
        {
            "person": person,
            "form": form,
            "grants": open_requests.filter(status="approved").count(),
            "pending": open_requests.filter(status="pending").count(),
        },
    )


@staff_required
@require_POST
def person_console_password(request: HttpRequest, pk: int) -> HttpResponse:
    """The password is rendered once in this response and never stored."""
    person = get_object_or_404(IamUser.objects.select_related("account"), pk=pk)
    try:
        # The exception to "views do no AWS": the password exists only in this
        # response, so IAM is called while the admin waits.
        password = direct.console_password_create(iam_user=person, actor=request.user)
    except (ValidationError, AwsError) as exc:
        text = exc.message if isinstance(exc, AwsError) else " ".join(exc.messages)
        messages.error(request, f"No console password was created: {text}")
        return redirect("person_detail", pk=pk)
    response = render(
        request,
        "staff/console_password.html",
        {"person": person, "password": password},
    )
    response["Cache-Control"] = "no-store"
    return response


# --- Projects and roles -------------------------------------------------------


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
    page = Paginator(rows, PAGE_SIZE).get_page(params.page(request))
    # Per page: the approvers and roles of the projects shown.
    shown = list(page.object_list)
    prefetch_related_objects(shown, "approvers", "roles")
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
    request: HttpRequest,
    project: Project,
    *,
    form=None,
    rules_form=None,
    glass_form=None,
    webhooks_form=None,
) -> HttpResponse:
    form = form or RoleForm()
    webhooks_form = webhooks_form or WebhooksForm()
    glass_form = glass_form or BreakGlassSettingsForm(
        initial={
            "allow_break_glass": project.allow_break_glass,
            "people": ", ".join(
                p.get_username() for p in project.break_glass_people.all()
            ),
            "break_glass_hours": project.break_glass_hours,
            "break_glass_daily_cap": project.break_glass_daily_cap,
            "break_glass_review_hours": project.break_glass_review_hours,
        }
    )
    rules_form = rules_form or ProjectRulesForm(
        initial={
            "approvals_required": project.approvals_required,
            "ticket_pattern": project.ticket_pattern,
            "ticket_url_template": project.ticket_url_template,
            "schedule_horizon_days": project.schedule_horizon_days,
        }
    )
    page = Paginator(
        project.roles.select_related("account")
        .prefetch_related("approvers")
        .order_by("os_user", "pk"),
        PAGE_SIZE,
    ).get_page(params.page(request))
    roles = list(page.object_list)
    grants = Counter(
        AccessRequest.active_grants()
        .filter(role__in=[role.pk for role in roles])
        .values_list("role_id", flat=True)
    )
    holders = trust.capacity_holders([role.pk for role in roles])
    for role in roles:
        role.capacity = trust.trust_capacity(role, holders=holders[role.pk])
        role.grant_count = grants[role.pk]
    return render(
        request,
        "staff/project_detail.html",
        {
            "project": project,
            "roles": roles,
            "page": page,
            "form": form,
            "rules_form": rules_form,
            "glass_form": glass_form,
            "webhooks_form": webhooks_form,
        },
    )


def _project_setting(request, pk: int, form_class, save, what: str, slot: str):
    """One of the project page's settings forms: validated by the form, saved
    by the service `save(project, data)`, or the page again with the errors."""
    project = get_object_or_404(Project, pk=pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            save(project, form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{what} of {project.name} saved.")
            return redirect("project_detail", pk=pk)
    return _project_detail_page(request, project, **{slot: form})


@staff_required
@require_POST
def project_rules(request: HttpRequest, pk: int) -> HttpResponse:
    def save(project, data):
        rules_services.project_rules_set(actor=request.user, project=project, **data)

    return _project_setting(
        request, pk, ProjectRulesForm, save, "Approval rules", "rules_form"
    )


@staff_required
@require_POST
def project_break_glass(request: HttpRequest, pk: int) -> HttpResponse:
    def save(project, data):
        break_glass.break_glass_set(
            actor=request.user,
            project=project,
            allow=data["allow_break_glass"],
            people=data["people"],
            hours=data["break_glass_hours"],
            daily_cap=data["break_glass_daily_cap"],
            review_hours=data["break_glass_review_hours"],
        )

    return _project_setting(
        request, pk, BreakGlassSettingsForm, save, "Break-glass", "glass_form"
    )


@staff_required
@require_POST
def project_webhooks(request: HttpRequest, pk: int) -> HttpResponse:
    def save(project, data):
        rules_services.project_webhooks_set(
            actor=request.user, project=project, **data
        )

    return _project_setting(
        request, pk, WebhooksForm, save, "Chat webhooks", "webhooks_form"
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
            "auto_rules": role.auto_rules.select_related(
                "created_by"
            ).prefetch_related("people"),
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


@staff_required
@require_POST
def account_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Retry the account baseline (operators group and shared policies)."""
    account = get_object_or_404(AwsAccount, pk=pk)
    sync_requests.sync_retry(obj=account, actor=request.user)
    messages.success(
        request, f"Asked the worker to sync the baseline of {account.name} again."
    )
    return _back(request, "dashboard")


# --- Dashboard and drift ------------------------------------------------------


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = sync_status.dashboard()
    context["break_glass_reviews"] = list(break_glass.reviews_open()[:100])
    return render(request, "staff/dashboard.html", context)


@staff_required
@require_GET
def drift(request: HttpRequest) -> HttpResponse:
    form = DriftFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = sync_status.drift_rows(
        status=filters.get("status", ""),
        kind=filters.get("kind", ""),
        account=filters.get("account"),
    )
    if form.is_bound and not form.is_valid():
        rows = rows.none()
    page = Paginator(rows, 50).get_page(params.page(request))
    for row in page.object_list:
        row.expected_json, row.actual_json = _json(row.expected), _json(row.actual)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "staff/drift.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


def _json(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@staff_required
@require_POST
def reconcile_now(request: HttpRequest) -> HttpResponse:
    """The same as the Django admin's action: ask the worker to reconcile
    every account (compare with AWS, record drift, repair what opsgate owns)."""
    try:
        sync_requests.reconcile_request()
    except Exception as exc:  # the broker is down; the periodic run will come
        messages.error(request, f"Could not reach the worker: {exc}")
    else:
        messages.success(
            request,
            "Asked the worker to reconcile every account. Reload this page in a "
            "minute to see what it found.",
        )
    return redirect("drift")


# --- Audit log ----------------------------------------------------------------


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_filter(events, form: AuditFilterForm):
    """The Audit log page's filters (also the API's)."""
    if form.is_valid():
        data = form.cleaned_data
        if data["person"]:
            events = events.filter(
                Q(actor_repr__icontains=data["person"])
                | Q(object_repr__icontains=data["person"])
            )
        if data["project"]:
            events = events.filter(project=data["project"])
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["since"]:
            events = events.filter(created_at__gte=_day_start(data["since"]))
        if data["until"]:
            end = _day_start(data["until"]) + timezone.timedelta(days=1)
            events = events.filter(created_at__lt=end)
    elif form.is_bound:
        events = events.none()
    return events


@staff_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = audit_filter(AuditEvent.objects.select_related("project"), form)
    if request.GET.get("format") == "csv":
        return _audit_csv(events)
    page = Paginator(events, 50).get_page(params.page(request))
    for event in page.object_list:
        event.changes = audit_changes(event.before, event.after)
        event.ticket, event.ticket_url = _audit_ticket(event)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "staff/audit.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?"
)


def _readable(value) -> str:
    """One audit value for people: times to the minute (no microseconds),
    lists comma-separated, yes/no, a dash for nothing."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_readable(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_readable(v)}" for k, v in value.items())
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment)
        return moment.strftime("%Y-%m-%d %H:%M")
    return str(value)


def audit_changes(before, after) -> list[dict]:
    """The fields an audit row changed: label, before and after as text
    (before None for a field the row only sets). Unchanged fields are left
    out."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    rows = []
    for key in list(before) + [k for k in after if k not in before]:
        if key in before and key in after and before[key] == after[key]:
            continue
        rows.append(
            {
                "field": key.replace("_", " "),
                "before": _readable(before[key]) if key in before else None,
                "after": _readable(after[key]) if key in after else "—",
            }
        )
    return rows


def _audit_ticket(event: AuditEvent) -> tuple[str, str]:
    """The ticket a request's audit row names, and its link (issue 13)."""
    after = event.after if isinstance(event.after, dict) else {}
    ticket = str(after.get("ticket") or "")
    template = event.project.ticket_url_template if event.project else ""
    if not (ticket and template):
        return ticket, ""
    return ticket, template.replace("{ticket}", quote(ticket, safe=""))


def _audit_csv(events) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="opsgate-audit.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "actor", "action", "object", "project", "before", "after"])
    for e in events.iterator():
        writer.writerow(
            [
                e.created_at.isoformat(),
                _cell(e.actor_repr),
                e.action,
                _cell(e.object_repr),
                _cell(e.project.name if e.project else ""),
                _cell(e.before or ""),
                _cell(e.after or ""),
            ]
        )
    return response


def _cell(value) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# --- Access reviews (issue 13) ------------------------------------------------


@staff_required
def reviews(request: HttpRequest) -> HttpResponse:
    form = AccessReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            review = access_reviews.review_start(
                actor=request.user,
                deadline=data["deadline"],
                min_age_days=data["min_age_days"],
                projects=list(data["projects"]),
                on_deadline=data["on_deadline"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Access review #{review.pk} started with "
                f"{review.items.count()} grants.",
            )
            return redirect("review_detail", pk=review.pk)
    rows = AccessReview.objects.annotate(
        total=Count("items"),
        open=Count("items", filter=Q(items__decision="")),
    ).order_by("-created_at")[:50]
    return render(request, "staff/reviews.html", {"form": form, "reviews": rows})


# --- AWS accounts ---------------------------------------------------------------


def _account_form_add(request: HttpRequest, form) -> AwsAccount | None:
    data = form.cleaned_data
    try:
        return accounts.account_add(
            actor=request.user,
            account_id=data["account_id"],
            name=data["name"],
            holds_people=data["holds_people"],
            holds_roles=data["holds_roles"],
            identity_account_id=data["identity_account"],
            assume_role_arn=data["assume_role_arn"],
            external_id=data["external_id"],
            regions=form.region_list(),
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None


@staff_required
def aws_accounts(request: HttpRequest) -> HttpResponse:
    """Every account: what it holds, whose users its roles trust, how opsgate
    reaches it (and whether it can), its baseline; adding one by hand."""
    initial = {"holds_people": True, "holds_roles": True}
    for key in ("account_id", "name"):  # "Enable" from the discovery list
        if params.text(request, key):
            initial[key] = params.text(request, key)
    form = AwsAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        account = _account_form_add(request, form)
        if account is not None:
            messages.success(
                request,
                f"Added {account}. opsgate is setting up its baseline; use "
                "“Check access” to see whether it can reach it.",
            )
            return redirect("aws_accounts")
    rows = list(AwsAccount.objects.select_related("identity_account").order_by("name"))
    return render(
        request,
        "staff/aws_accounts.html",
        {"rows": rows, "form": form},
    )


@staff_required
def aws_account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an account's name, what it holds, whom its roles trust, how
    opsgate reaches it and its regions; the id stays (it is the account)."""
    account = get_object_or_404(
        AwsAccount.objects.select_related("identity_account"), pk=pk
    )
    identity = account.identity_account
    initial = {
        "account_id": account.account_id,
        "name": account.name,
        "holds_people": account.holds_people,
        "holds_roles": account.holds_roles,
        "identity_account": (
            identity.account_id if identity and identity.pk != account.pk else ""
        ),
        "assume_role_arn": account.assume_role_arn,
        "external_id": account.external_id,
        "regions": ", ".join(account.regions),
    }
    form = AwsAccountForm(request.POST or None, initial=initial)
    form.fields["account_id"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = accounts.account_update(
                actor=request.user,
                account=account,
                name=data["name"],
                holds_people=data["holds_people"],
                holds_roles=data["holds_roles"],
                identity_account_id=data["identity_account"],
                assume_role_arn=data["assume_role_arn"],
                external_id=data["external_id"],
                regions=form.region_list(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Saved {account.name}. opsgate brings its baseline and roles in "
                "line; use “Check access” to see whether it can reach it.",
            )
            return redirect("aws_accounts")
    return render(
        request, "staff/aws_account_edit.html", {"account": account, "form": form}
    )


@staff_required
@require_POST
def aws_account_check(request: HttpRequest, pk: int) -> HttpResponse:
    """sts:GetCallerIdentity through opsgate's way into the account, now."""
    account = get_object_or_404(AwsAccount, pk=pk)
    error = direct.account_reach_check(account)
    if error:
        messages.error(request, f"opsgate cannot reach {account}: {error}")
    else:
        messages.success(request, f"opsgate reaches {account}.")
    return redirect("aws_accounts")


@staff_required
@require_GET
def aws_accounts_discover(request: HttpRequest) -> HttpResponse:
    """The Organization's accounts (organizations:ListAccounts, or one OU's),
    each with an "Enable" link that fills the add form."""
    form = DiscoverForm(request.GET or None)
    found, error = [], ""
    if form.is_valid():
        try:
            found = organizations.organization_accounts(ou_id=form.cleaned_data["ou"])
        except AwsError as exc:
            error = exc.message
    return render(
        request,
        "staff/aws_accounts_discover.html",
        {"form": form, "found": found, "error": error},
    )


# --- Access reviews (continued) --------------------------------------------------


@staff_required
@require_GET
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(AccessReview, pk=pk)
    if request.GET.get("format") == "csv":
        response = HttpResponse(
            access_reviews.review_csv(review), content_type="text/csv; charset=utf-8"
        )
        name = f"opsgate-access-review-{review.pk}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    items = review.items.select_related(
        "grant__role__project", "grant__requester", "decided_by"
    )
    return render(
        request, "staff/review_detail.html", {"review": review, "items": items}
    )

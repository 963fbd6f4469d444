"""Admin (staff) pages: people, projects and roles, the audit log."""

import csv
import json
from collections import Counter
from datetime import datetime, time
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts_app import invitations, sync_requests, trust
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
    Project,
)
from accounts_app.services import accounts, people
from accounts_app.services import projects as project_services
from accounts_app.services import roles as role_services
from portal import params
from portal.forms import (
    AuditFilterForm,
    AwsAccountForm,
    DiscoverForm,
    DriftFilterForm,
    PersonForm,
    ProjectForm,
    RoleForm,
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
    rows = IamUser.objects.select_related("user", "account").order_by("name")
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
    requests = (
        AccessRequest.objects.filter(requester=person)
        .select_related("role__project")
        .order_by("-created_at")[:50]
    )
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
    rows = Project.objects.prefetch_related("approvers", "roles").order_by("name")
    return render(request, "staff/projects.html", {"projects": rows, "form": form})


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
    roles = list(project.roles.select_related("account"))
    grants = Counter(
        AccessRequest.active_grants()
        .filter(role__project=project)
        .values_list("role_id", flat=True)
    )
    holders = trust.grant_holders([role.pk for role in roles])
    for role in roles:
        role.capacity = trust.trust_capacity(role, holders=holders[role.pk])
        role.grant_count = grants[role.pk]
    return render(
        request,
        "staff/project_detail.html",
        {"project": project, "roles": roles, "form": form},
    )


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
    return render(request, "staff/dashboard.html", sync_status.dashboard())


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


@staff_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.select_related("project")
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
    if request.GET.get("format") == "csv":
        return _audit_csv(events)
    page = Paginator(events, 50).get_page(params.page(request))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "staff/audit.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


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

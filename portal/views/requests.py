"""Requester pages: my access, request access, cancel, "I'm done", and the
status endpoint the page polls. Input, permissions, output: the rules are in
accounts_app.services."""

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from accounts_app import selectors
from accounts_app.models import AccessRequest, IamUser, IamUserState, RequestStatus
from accounts_app.services import access_requests, break_glass, readiness
from portal import params
from portal.forms.base import add_service_errors
from portal.forms.requests import AccessRequestForm, BreakGlassForm, ProjectChoiceForm
from provisioning import direct


def current_person(request: HttpRequest) -> IamUser | None:
    return (
        IamUser.objects.filter(user=request.user, state=IamUserState.ACTIVE)
        .select_related("account")
        .first()
    )


def my_requests(request: HttpRequest):
    """Who decided or ended them: selectors.request_details_load."""
    return AccessRequest.objects.filter(requester__user=request.user).select_related(
        "role__project", "role__account", "requester__account"
    )


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    # The user's IAM users (one per identity account), read once rather than
    # joined to each request: every request is one of theirs.
    people = IamUser.objects.filter(user=request.user).select_related("account")
    people = people.in_bulk()
    mine = AccessRequest.objects.filter(requester__in=list(people))
    mine = mine.select_related("role__project", "role__account")
    requests = list(mine.order_by("-created_at")[:50])
    for req in requests:
        req.requester = people[req.requester_id]
    selectors.request_details_load(requests)
    for req in requests:
        req.display = selectors.request_display(req)
        req.note = selectors.request_note(req, request.user)
    roles = {r.role for r in requests if r.is_active_grant}
    # The exception to "views do no AWS": the instances are read while the
    # page waits (cached briefly), one EC2 read per account, however many
    # grants; each role's in its own account.
    instances = direct.instances_by_role(sorted(roles, key=lambda r: r.pk))
    grants = []
    for req in requests:
        if req.is_active_grant:
            found, error = instances[req.role_id]
            running = [i for i in found if i.state == "running"]
            target = (running or found or [None])[0]
            req.connection = selectors.grant_connection(
                req, instance_id=target.instance_id if target else ""
            )
            req.instances, req.instances_error = found, error
            if req.provisioned_at and readiness.enabled():
                req.readiness = readiness.summary(req)
            grants.append(req)
    context = {
        # The page only says whether there is one.
        "has_person": any(p.state == IamUserState.ACTIVE for p in people.values()),
        "grants": grants,
        "access_requests": requests,
        "mfa_enabled": _has_totp(request),
    }
    return render(request, "home.html", context)


def _has_totp(request: HttpRequest) -> bool:
    """Whether the user has an authenticator app: the MFA middleware read
    it already (portal.middleware)."""
    known = getattr(request, "opsgate_has_totp", None)
    if known is None:
        return is_mfa_enabled(request.user, [Authenticator.Type.TOTP])
    return known


@login_required
def request_access(request: HttpRequest) -> HttpResponse:
    """Step 1 picks the project (a GET form, works without JavaScript); step 2
    shows that project's OS users and allowed durations."""
    person = current_person(request)
    if person is None:
        messages.error(
            request,
            "You have no IAM user in opsgate yet, so you cannot ask for access. "
            "Ask an admin to add you.",
        )
        return redirect("home")
    # A POST always binds the chooser, so a missing or tampered project shows
    # its error instead of being ignored.
    bound = request.GET or request.method == "POST"
    chooser = ProjectChoiceForm(request.GET if bound else None)
    project = chooser.cleaned_data["project"] if chooser.is_valid() else None
    form = None
    if project is not None:
        form = AccessRequestForm(request.POST or None, project=project)
        if request.method == "POST" and form.is_valid():
            role = form.cleaned_data["role"]
            try:
                access_requests.access_request_create(
                    requester=selectors.person_for_role(request.user, role) or person,
                    role=role,
                    reason=form.cleaned_data["reason"],
                    duration_hours=form.duration_hours(),
                    actor=request.user,
                    ticket=form.ticket_value(),
                    starts_at=form.starts_at_value(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Request sent. The approvers of {project.name} have been "
                    "e-mailed; you will get an e-mail when they decide.",
                )
                return redirect("home")
    glass = None
    if project is not None and break_glass.may_break_glass(request.user, project):
        glass = BreakGlassForm(project=project)
    return render(
        request,
        "request_access.html",
        _request_page(
            request, chooser=chooser, project=project, form=form, glass=glass
        ),
    )


def _request_page(request: HttpRequest, *, chooser, project, form, glass) -> dict:
    """The request page's context, for its own view and after a break-glass
    error: the same approvers, never an empty list after "Approvers of"."""
    deciders = []
    if project is not None:
        deciders = [
            a
            for a in project.approvers.filter(is_active=True)
            if a.pk != request.user.pk
        ]
    return {
        "chooser": chooser,
        "project": project,
        "form": form,
        # Nobody decides their own request: none left, it waits for ever.
        "nobody_decides": project is not None and not deciders,
        "deciders": deciders,
        "glass": glass,
    }


@login_required
@require_POST
def break_glass_activate(request: HttpRequest) -> HttpResponse:
    """Self-activation at once (issue 13): the rules are in the service."""
    person = current_person(request)
    chooser = ProjectChoiceForm(request.GET)
    if person is None or not chooser.is_valid():
        messages.error(request, "Pick a project first.")
        return redirect("request_access")
    project = chooser.cleaned_data["project"]
    glass = BreakGlassForm(request.POST, project=project)
    if glass.is_valid():
        try:
            grant = break_glass.break_glass_activate(
                requester=person,
                role=glass.cleaned_data["role"],
                reason=glass.cleaned_data["reason"],
                actor=request.user,
            )
        except PermissionDenied as exc:
            glass.add_error(None, str(exc))
        except ValidationError as exc:
            add_service_errors(glass, exc)
        else:
            messages.success(
                request,
                f"Break-glass access to {project.name} is being activated until "
                f"{grant.expires_at:%H:%M} UTC. Every approver and admin has been "
                "told.",
            )
            return redirect("home")
    return render(
        request,
        "request_access.html",
        _request_page(
            request,
            chooser=chooser,
            project=project,
            form=AccessRequestForm(project=project),
            glass=glass,
        ),
        status=400,
    )


def _act(request: HttpRequest, action, success: str) -> HttpResponse:
    try:
        action()
    except (ValidationError, PermissionDenied) as exc:
        text = " ".join(getattr(exc, "messages", None) or [str(exc)])
        messages.error(request, text)
    else:
        messages.success(request, success)
    return redirect("home")


@login_required
@require_POST
def request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(my_requests(request), pk=pk)
    return _act(
        request,
        lambda: access_requests.access_request_cancel(
            access_request=req, actor=request.user
        ),
        f"Request for {req.role.project.name} as {req.role.os_user} cancelled.",
    )


@login_required
@require_POST
def request_done(request: HttpRequest, pk: int) -> HttpResponse:
    """ "I'm done": the requester ends their own grant."""
    req = get_object_or_404(my_requests(request), pk=pk)
    return _act(
        request,
        lambda: access_requests.access_request_revoke(
            access_request=req, actor=request.user
        ),
        f"Access to {req.role.project.name} as {req.role.os_user} ended. "
        "opsgate is removing you from the role's trust.",
    )


@login_required
@require_POST
def request_check(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Check again": read back what AWS holds for one of my grants."""
    req = get_object_or_404(my_requests(request), pk=pk)
    return _act(
        request,
        lambda: readiness.grant_check_request(grant=req, actor=request.user),
        f"Checking your access to {req.role.project.name} as {req.role.os_user} "
        "again; this page updates when it is done.",
    )


@login_required
@require_GET
def request_status(request: HttpRequest) -> JsonResponse:
    """What the "My access" page polls every 2 seconds while something moves."""
    # Only what the status reads: the role and the requester.
    rows = list(
        AccessRequest.objects.filter(
            Q(status__in=[RequestStatus.PENDING, RequestStatus.APPROVED])
            | Q(pk__in=params.integers(request, "ids")),
            requester__user=request.user,
        ).select_related("role", "requester")
    )
    selectors.request_details_load(rows)
    data = {}
    for req in rows:
        display = selectors.request_display(req)
        data[str(req.pk)] = {
            "key": display.key,
            "label": display.label,
            "detail": display.detail,
            "final": display.is_final,
            "note": selectors.request_note(req, request.user),
            "readiness": req.readiness_state,
        }
    return JsonResponse({"requests": data})


def admin_login(request: HttpRequest) -> HttpResponse:
    """Everyone signs in through allauth, where the TOTP step is."""
    target = reverse("account_login")
    next_url = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        target += "?" + urlencode({"next": next_url})
    return redirect(target)

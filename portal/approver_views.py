"""Approver queue: pending requests for the projects the user approves, a
decision form per request, and their decided history."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts_app import selectors, trust
from accounts_app.models import AccessRequest, RequestStatus
from accounts_app.services import access_requests
from portal import params
from portal.forms import DecisionForm


def _in_my_projects(request: HttpRequest):
    return AccessRequest.objects.filter(
        role__project__approvers=request.user
    ).select_related(
        "role__project", "role__account", "requester__user", "requester__account"
    )


PENDING_PAGE = 25
GRANTS_SHOWN = 100


def _approvals_context(request: HttpRequest) -> dict:
    projects = list(request.user.approver_of.all())
    if not projects:
        raise PermissionDenied("You approve no project.")
    page = Paginator(
        _in_my_projects(request)
        .filter(status=RequestStatus.PENDING)
        .order_by("created_at", "pk"),
        PENDING_PAGE,
    ).get_page(params.page(request))
    pending = list(page.object_list)
    holders = trust.grant_holders({req.role_id for req in pending})
    for req in pending:
        # What the trust policy would need with this requester in it.
        req.capacity = trust.trust_capacity(
            req.role, extra_user=req.requester, holders=holders[req.role_id]
        )
        req.own = req.requester.user_id == request.user.pk
    decided = (
        AccessRequest.objects.filter(decided_by=request.user)
        .select_related("role__project", "role__account", "requester")
        .order_by("-decided_at")[:50]
    )
    for req in decided:
        req.display = selectors.request_display(req)
    grants = (
        AccessRequest.active_grants()
        .filter(role__project__in=projects)
        .select_related("role__project", "role__account", "requester")
        .order_by("expires_at")
    )
    return {
        "projects": projects,
        "pending": pending,
        "page": page,
        "decided": decided,
        "grants": grants[:GRANTS_SHOWN],
        "grants_total": grants.count(),
    }


@login_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals.html", _approvals_context(request))


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(_in_my_projects(request).distinct(), pk=pk)
    form = DecisionForm(request.POST, access_request=req)
    if not form.is_valid():
        # Back to the queue with the errors on this request's form.
        context = _approvals_context(request)
        for item in context["pending"]:
            if item.pk == req.pk and not item.own:
                item.form = form
                return render(request, "approvals.html", context)
        messages.error(request, " ".join(form.all_messages()))
        return redirect("approvals")
    comment = form.cleaned_data["comment"]
    who = f"{req.requester.name}'s request for {req.role.project.name}"
    try:
        if form.cleaned_data["decision"] == "approve":
            access_requests.access_request_approve(
                access_request=req, approver=request.user, comment=comment
            )
            messages.success(
                request, f"Approved {who}. opsgate is updating the role's trust."
            )
        else:
            access_requests.access_request_reject(
                access_request=req, approver=request.user, comment=comment
            )
            messages.success(request, f"Rejected {who}. They have been e-mailed.")
    except (ValidationError, PermissionDenied) as exc:
        text = " ".join(getattr(exc, "messages", None) or [str(exc)])
        messages.error(request, text)
    return redirect("approvals")


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(_in_my_projects(request).distinct(), pk=pk)
    try:
        access_requests.access_request_revoke(
            access_request=req,
            actor=request.user,
            comment=request.POST.get("comment", "")[:2000],
        )
    except (ValidationError, PermissionDenied) as exc:
        text = " ".join(getattr(exc, "messages", None) or [str(exc)])
        messages.error(request, text)
    else:
        messages.success(
            request, f"Revoked {req.requester.name}'s access to {req.role.role_name}."
        )
    return redirect("approvals")

"""Approver queue: pending requests for the projects the user approves, a
decision form per request, and their decided history."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts_app import approval_rules, selectors, trust
from accounts_app.models import (
    AccessRequest,
    Approval,
    AwsAccount,
    BreakGlassReview,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, access_reviews, break_glass
from portal import params
from portal.forms.approvals import (
    ApprovalFilterForm,
    BreakGlassReviewForm,
    DecisionForm,
)
from portal.forms.reviews import ReviewItemForm


def _in_my_projects(request: HttpRequest, role_ids: list[int] | None = None):
    return AccessRequest.objects.filter(
        approval_rules.decidable_by(request.user, role_ids)
    ).select_related(
        "role__project", "role__account", "requester__user", "requester__account"
    )


PENDING_PAGE = 10  # decision cards: each a form and about 60 lookups to render
# Grants ending soonest first, 25 a page (`grants` page parameter): a row
# costs a revoke form and a dozen lookups to render.
GRANTS_PAGE = 25


def _approvals_context(request: HttpRequest) -> dict:
    projects = list(
        Project.objects.filter(approval_rules.approved_projects(request.user))
        .select_related("account")
        .order_by("name")
    )
    if not projects:
        raise PermissionDenied("You approve no project.")
    accounts = dict(
        AwsAccount.objects.filter(roles__project__in=projects)
        .distinct()
        .values_list("pk", "name")
    )
    filters = ApprovalFilterForm(
        request.GET or None, projects=projects, accounts=accounts
    )
    scope, age, status = Q(), None, ""
    if filters.is_valid():
        data = filters.cleaned_data
        if data["project"]:
            scope &= Q(role__project_id=data["project"])
        if data["account"]:
            scope &= Q(role__account_id=data["account"])
        age, status = filters.hours(), data["status"]
    elif filters.is_bound:
        scope = Q(pk__in=[])
    role_ids = approval_rules.decidable_role_ids(request.user)
    waiting = _in_my_projects(request, role_ids).filter(
        scope, status=RequestStatus.PENDING
    )
    if age:
        waiting = waiting.filter(created_at__lte=timezone.now() - timedelta(hours=age))
    page = Paginator(waiting.order_by("created_at", "pk"), PENDING_PAGE).get_page(
        params.page(request)
    )
    pending = list(page.object_list)
    _approvals_load(pending)
    holders = trust.capacity_holders({req.role_id for req in pending})
    own = {
        req.role.project_id
        for req in pending
        if req.requester.user_id == request.user.pk
    }
    # Projects where someone else may decide the user's own requests (one
    # query, and only when the page shows one of them).
    others = set()
    if own:
        others = set(
            Project.approvers.through.objects.filter(
                project_id__in=own, user__is_active=True
            )
            .exclude(user_id=request.user.pk)
            .values_list("project_id", flat=True)
        )
    for req in pending:
        # What the trust policy would need with this requester in it.
        req.capacity = trust.trust_capacity(
            req.role, extra_user=req.requester, holders=holders[req.role_id]
        )
        req.own = req.requester.user_id == request.user.pk
        # The decision form with errors, when this request's POST had some.
        # Set here: a missing attribute costs the template a dir() per lookup.
        req.form = None
        req.undecidable = req.own and req.role.project_id not in others
        _quorum_progress(req, request.user)
    decided = (
        AccessRequest.objects.filter(scope, decided_by=request.user)
        .filter(**({"status": status} if status else {}))
        .select_related(
            "role__project",
            "role__account",
            "requester",
            "decided_by",
            "ended_by",
            "auto_rule",
        )
        .order_by("-decided_at")[:50]
    )
    for req in decided:
        req.display = selectors.request_display(req)
        req.note = selectors.request_note(req, request.user)
    # Active grants, and scheduled ones (shown with their window).
    grants = (
        AccessRequest.objects.filter(status=RequestStatus.APPROVED)
        .exclude(expires_at__lte=timezone.now())
        .filter(approval_rules.decidable_by(request.user, role_ids))
        .filter(scope)
        .select_related("role__project", "role__account", "requester")
        .order_by("expires_at")
    )
    reviews = []
    if any(p.allow_break_glass for p in projects):
        reviews = list(
            break_glass.reviews_open()
            .filter(access_request__in=_in_my_projects(request, role_ids))
            .exclude(access_request__requester__user=request.user)
        )
    grants_page = Paginator(grants, GRANTS_PAGE).get_page(
        params.page(request, "grants")
    )
    query = request.GET.copy()
    query.pop("page", None)
    grants_query = request.GET.copy()
    grants_query.pop("grants", None)
    return {
        "filters": filters,
        "filtered": filters.is_bound
        and any(request.GET.get(f) for f in filters.fields),
        "query": query.urlencode(),
        "reviews": reviews,
        "projects": projects,
        "pending": pending,
        "page": page,
        "decided": decided,
        "grants": grants_page.object_list,
        "grants_page": grants_page,
        "grants_query": grants_query.urlencode(),
    }


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


def _quorum_progress(req: AccessRequest, user) -> None:
    """ "1 of 2 approvals, by alice" and whether this approver gave one."""
    given = req.given
    req.approved_by = [a.approver.get_username() for a in given]
    req.approved_by_me = any(a.approver_id == user.pk for a in given)


@login_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals.html", _approvals_context(request))


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    # What the form checks (the role and project the page showed); the
    # service reads and locks the rest.
    req = get_object_or_404(
        AccessRequest.objects.filter(
            approval_rules.decidable_by(request.user)
        ).select_related("role__project"),
        pk=pk,
    )
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
    try:
        if form.cleaned_data["decision"] == "approve":
            req = access_requests.access_request_approve(
                access_request=req, approver=request.user, comment=comment
            )
            who = _whose(req)
            if req.status == RequestStatus.PENDING:
                given = req.approvals.count()
                messages.success(
                    request,
                    f"Approved {who}: {given} of {req.approvals_required} "
                    "approvals; it waits for another approver.",
                )
            else:
                messages.success(
                    request, f"Approved {who}. opsgate is updating the role's trust."
                )
        else:
            req = access_requests.access_request_reject(
                access_request=req, approver=request.user, comment=comment
            )
            messages.success(
                request, f"Rejected {_whose(req)}. They have been e-mailed."
            )
    except (ValidationError, PermissionDenied) as exc:
        text = " ".join(getattr(exc, "messages", None) or [str(exc)])
        messages.error(request, text)
    return redirect("approvals")


def _whose(req: AccessRequest) -> str:
    """The decided request as the message names it (the service's copy, which
    holds the requester and the project)."""
    return f"{req.requester.name}'s request for {req.role.project.name}"


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(_in_my_projects(request), pk=pk)
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


@login_required
@require_POST
def break_glass_review(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(
        BreakGlassReview.objects.filter(access_request__in=_in_my_projects(request)),
        pk=pk,
    )
    form = BreakGlassReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(m for e in form.errors.values() for m in e))
        return redirect("approvals")
    try:
        break_glass.break_glass_review(
            review=review,
            actor=request.user,
            outcome=form.cleaned_data["outcome"],
            note=form.cleaned_data["note"],
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    else:
        messages.success(request, f"Break-glass use {form.cleaned_data['outcome']}.")
    return redirect("approvals")


@login_required
@require_GET
def access_reviews_page(request: HttpRequest) -> HttpResponse:
    """Every grant of the approver's projects under review, on one page."""
    items = list(access_reviews.items_for(request.user)[:500])
    return render(request, "access_reviews.html", {"items": items})


@login_required
@require_POST
def review_item_decide(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(access_reviews.items_for(request.user), pk=pk)
    form = ReviewItemForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Confirm or revoke.")
        return redirect("access_reviews")
    try:
        access_reviews.review_decide(
            item=item,
            actor=request.user,
            decision=form.cleaned_data["decision"],
            note=form.cleaned_data["note"],
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    else:
        word = form.cleaned_data["decision"]
        messages.success(
            request,
            f"{item.grant.requester.name}'s access to "
            f"{item.grant.role.project.name} {word}.",
        )
    return redirect("access_reviews")

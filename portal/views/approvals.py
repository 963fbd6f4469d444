"""Approver queue: pending requests for the projects the user approves, a
decision form per request; and, on a page of its own, their decisions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts_app import approval_rules
from accounts_app.models import AccessRequest, BreakGlassReview, RequestStatus
from accounts_app.services import access_requests, access_reviews, break_glass
from portal.forms.approvals import BreakGlassReviewForm, DecisionForm
from portal.forms.reviews import ReviewItemForm
from portal.views.approvals_queue import approvals_context, decided_context


def _in_my_projects(request: HttpRequest):
    return AccessRequest.objects.filter(
        approval_rules.decidable_by(request.user)
    ).select_related(
        "role__project", "role__account", "requester__user", "requester__account"
    )


@login_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals.html", approvals_context(request))


@login_required
@require_GET
def decided(request: HttpRequest) -> HttpResponse:
    return render(request, "approvals_decided.html", decided_context(request))


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    # What the form checks (the role and project the page showed; the names
    # for its refusals are read only then); the service reads and locks the
    # rest. Four columns, not the three tables' seventy: compiling those took
    # longer than the query.
    req = get_object_or_404(
        AccessRequest.objects.filter(approval_rules.decidable_by(request.user))
        .select_related("role")
        .only("role__project"),
        pk=pk,
    )
    form = DecisionForm(request.POST, access_request=req)
    if not form.is_valid():
        # Back to the queue with the errors on this request's form.
        context = approvals_context(request)
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

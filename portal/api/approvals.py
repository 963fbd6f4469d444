"""API: the approver's queue and decisions (approve, reject)."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query

from accounts_app import approval_rules
from accounts_app.models import (
    AccessRequest,
    RequestStatus,
)
from accounts_app.services import access_requests
from portal.api import schemas as s
from portal.api.app import PK, _page, _r, api
from portal.api.core import (
    ApiProblem,
    require_scope,
    totp_authenticator,
)
from portal.api.totp import check_totp


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
    totp_authenticator(request)  # first: the scope check then reads nothing more
    require_scope(request, "approve")
    # Only whether I may decide it: the service reads and locks the request.
    req = get_object_or_404(
        AccessRequest.objects.filter(approval_rules.decidable_by(request.user)).only(
            "pk", "role_id"
        ),
        pk=pk,
    )
    check_totp(request, payload.totp)
    # The request as the service left it (committed, with its role, project,
    # account, requester and decider): the answer needs no second read.
    return s.RequestOut.of(
        service(access_request=req, approver=request.user, comment=payload.comment)
    )


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

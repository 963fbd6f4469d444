"""The admin dashboard (what is not in sync) and the drift page
(what reconcile found in AWS), with its reconcile-now button."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.views.decorators.http import require_GET, require_POST

from accounts_app import sync_requests
from accounts_app.services import break_glass
from portal import params
from portal.forms.drift import DriftFilterForm
from portal.templatetags.opsgate import waited
from portal.views import links
from portal.views.staff import staff_required
from provisioning import status as sync_status


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = sync_status.dashboard()
    now = context["now"]
    # The rows' text is made here: through the template's filters and {% url %}
    # tags it cost more than the rest of the page.
    project_url, edit_url = links.by_pk("project_detail"), links.by_pk("project_edit")
    for req in context["pending"]:
        created = timezone.localtime(req["created_at"])
        req["since"], req["waited"] = created.isoformat(), waited(created, now)
        req["project_url"] = project_url(req["project_id"])
        if req["undecidable"]:
            req["edit_url"] = edit_url(req["project_id"])
    for grant in context["expiring"]:
        ends = timezone.localtime(grant["expires_at"])
        grant["ends_iso"], grant["ends"] = ends.isoformat(), f"{ends:%-d %b %H:%M}"
        grant["left"] = timeuntil(ends, now)
    context["break_glass_reviews"] = []
    if context["totals"]["break_glass"]:
        # What the table shows, and no more (each column is a conversion a row).
        reviews = break_glass.reviews_open().only(
            "due_at",
            "outcome",
            "access_request__decided_at",
            "access_request__requester__name",
            "access_request__role__os_user",
            "access_request__role__project__name",
        )
        context["break_glass_reviews"] = list(reviews[:100])
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

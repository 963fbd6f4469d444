"""The audit log page (filters, CSV export) and how a row's changes are shown."""

import csv
import re
from datetime import datetime, time
from urllib.parse import quote

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts_app.models import AuditEvent
from portal.forms.audit import AuditFilterForm
from portal.views.paging import page_without_count
from portal.views.staff import staff_required

AUDIT_PAGE = 50


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
    page = page_without_count(events, request, AUDIT_PAGE)
    for event in page.object_list:
        event.when = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M")
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

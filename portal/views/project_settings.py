"""A project's settings page: its approval rules, break-glass and chat
webhooks, each a form of its own saved by its service. Seldom changed, so
not on the project's page, which every look at a project renders."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts_app.models import Project
from accounts_app.services import break_glass
from accounts_app.services import rules as rules_services
from portal.forms.base import add_service_errors
from portal.forms.projects import BreakGlassSettingsForm, ProjectRulesForm, WebhooksForm
from portal.views.staff import staff_required


@staff_required
@require_GET
def project_settings(request: HttpRequest, pk: int) -> HttpResponse:
    return _settings_page(request, get_object_or_404(Project, pk=pk))


def _settings_page(
    request: HttpRequest,
    project: Project,
    *,
    rules_form=None,
    glass_form=None,
    webhooks_form=None,
) -> HttpResponse:
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
    return render(
        request,
        "staff/project_settings.html",
        {
            "project": project,
            "rules_form": rules_form,
            "glass_form": glass_form,
            "webhooks_form": webhooks_form or WebhooksForm(),
        },
    )


def _project_setting(request, pk: int, form_class, save, what: str, slot: str):
    """One of the settings forms: validated by the form, saved by the
    service `save(project, data)`, or the settings page again with the
    errors."""
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
    return _settings_page(request, project, **{slot: form})


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
        rules_services.project_webhooks_set(actor=request.user, project=project, **data)

    return _project_setting(
        request, pk, WebhooksForm, save, "Chat webhooks", "webhooks_form"
    )

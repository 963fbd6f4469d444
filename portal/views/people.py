"""Admin pages about people: the list, adding one, a person's page, retrying
their sync, inviting, offboarding, a console password."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts_app import invitations, selectors, sync_requests
from accounts_app.models import (
    AccessRequest,
    IamUser,
    IamUserState,
    Project,
)
from accounts_app.services import people
from portal import params
from portal.forms.base import add_service_errors
from portal.forms.people import OffboardForm, PersonForm
from portal.views.paging import page_of
from portal.views.staff import (
    PAGE_SIZE,
    _back,
    _default_account_or_message,
    staff_required,
)
from provisioning import direct
from provisioning.aws import AwsError


@staff_required
@require_GET
def people_list(request: HttpRequest) -> HttpResponse:
    q = params.text(request, "q")
    rows = (
        IamUser.objects.select_related("user", "account")
        # A list per row (to_attr): a related manager per row costs more
        # than the rest of the row.
        .prefetch_related(
            Prefetch(
                "user__approver_of", Project.objects.only("name"), to_attr="approves"
            )
        )
        .order_by("name")
    )
    if q:
        rows = rows.filter(_matching(q))
    page = page_of(rows, request, PAGE_SIZE)
    return render(request, "staff/people.html", {"page": page, "q": q})


def _matching(q: str) -> Q:
    """People whose IAM user name or e-mail, or whose login's e-mail or
    names, contain q. Each table's columns in a subquery of their own: on
    PostgreSQL each is answered from its trigram index (migration 0011),
    where one condition across the join read every person."""
    own = IamUser.objects.filter(Q(name__icontains=q) | Q(email__icontains=q))
    logins = get_user_model().objects.filter(
        Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q)
    )
    return Q(pk__in=own.order_by().values("pk")) | Q(
        user__in=logins.order_by().values("pk")
    )


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

"""Admin pages about AWS accounts: the list, adding and editing one,
checking it, discovering an organization's accounts, retrying its baseline."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts_app import sync_requests
from accounts_app.models import AwsAccount
from accounts_app.services import accounts
from portal import params
from portal.forms.accounts import AwsAccountForm, DiscoverForm
from portal.forms.base import add_service_errors
from portal.views.staff import _back, staff_required
from provisioning import direct, organizations
from provisioning.aws import AwsError


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
def aws_account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an account's name, what it holds, whom its roles trust, how
    opsgate reaches it and its regions; the id stays (it is the account)."""
    account = get_object_or_404(
        AwsAccount.objects.select_related("identity_account"), pk=pk
    )
    identity = account.identity_account
    initial = {
        "account_id": account.account_id,
        "name": account.name,
        "holds_people": account.holds_people,
        "holds_roles": account.holds_roles,
        "identity_account": (
            identity.account_id if identity and identity.pk != account.pk else ""
        ),
        "assume_role_arn": account.assume_role_arn,
        "external_id": account.external_id,
        "regions": ", ".join(account.regions),
    }
    form = AwsAccountForm(request.POST or None, initial=initial)
    form.fields["account_id"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = accounts.account_update(
                actor=request.user,
                account=account,
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
        else:
            messages.success(
                request,
                f"Saved {account.name}. opsgate brings its baseline and roles in "
                "line; use “Check access” to see whether it can reach it.",
            )
            return redirect("aws_accounts")
    return render(
        request, "staff/aws_account_edit.html", {"account": account, "form": form}
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

"""The admin dashboard and the drift page: what they show, the retry and
reconcile buttons, and their empty states."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    AwsAccount,
    IamUser,
    OperationRole,
)
from accounts_app.services import access_requests
from provisioning import status, tasks
from provisioning.models import Drift, DriftKind

pytestmark = pytest.mark.django_db


def ask(person, role, hours=8):
    return access_requests.access_request_create(
        requester=person, role=role, reason="r", duration_hours=hours, actor=person.user
    )


def in_sync(*objs):
    for obj in objs:
        type(obj).objects.filter(pk=obj.pk).update(
            applied_version=obj.desired_version + 10, desired_version=1
        )


# --- Dashboard ----------------------------------------------------------------


def test_dashboard_counts_grants_expiring_soon_and_pending_oldest_first(
    login, alice, bob, carol, dave, erin, deploy_role
):
    now = timezone.now()
    soon = ask(carol, deploy_role)
    access_requests.access_request_approve(access_request=soon, approver=bob.user)
    later = ask(dave, deploy_role, hours=72)
    access_requests.access_request_approve(access_request=later, approver=bob.user)
    young = ask(erin, deploy_role)
    old = ask(carol, deploy_role)
    AccessRequest.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=5))
    page = login(alice).get(reverse("dashboard"))
    assert page.status_code == 200
    assert page.context["totals"]["active"] == 2
    assert page.context["totals"]["expiring"] == 1
    assert page.context["totals"]["pending"] == 2
    assert [g["pk"] for g in page.context["expiring"]] == [soon.pk]
    assert [r["pk"] for r in page.context["pending"]] == [old.pk, young.pk]
    text = page.content.decode()
    assert "5\xa0hours" in text  # the age of the oldest pending request
    assert "bob" in text  # its approvers


def test_the_totals_are_counted_at_the_time_of_each_view(bob, carol, deploy_role):
    """The totals' statement is compiled once; the time is given each view."""
    grant = ask(carol, deploy_role)
    access_requests.access_request_approve(access_request=grant, approver=bob.user)
    now = timezone.now()
    totals = status.dashboard(now)["totals"]
    assert (totals["active"], totals["expiring"], totals["ending"]) == (1, 1, 0)
    later = status.dashboard(now + timedelta(hours=9))
    assert (later["totals"]["active"], later["totals"]["expiring"]) == (0, 0)
    assert later["totals"]["ending"] == 1
    assert [row["who"] for row in later["ending"]] == ["carol"]


def test_dashboard_lists_out_of_sync_objects_with_error_and_retry(
    login, alice, carol, deploy_role, account
):
    IamUser.objects.filter(pk=carol.pk).update(
        last_error="iam:CreateUser failed: AccessDenied", error_is_permanent=True
    )
    OperationRole.objects.filter(pk=deploy_role.pk).update(
        applied_version=0, desired_version=2
    )
    AwsAccount.objects.filter(pk=account.pk).update(
        last_error="iam:CreateGroup failed: LimitExceeded", error_is_permanent=True
    )
    in_sync(alice)
    client = login(alice)
    page = client.get(reverse("dashboard"))
    assert [p.name for p in page.context["unsynced_users"]] == ["bob", "carol"]
    assert [r.pk for r in page.context["unsynced_roles"]] == [deploy_role.pk]
    assert [a.pk for a in page.context["unsynced_accounts"]] == [account.pk]
    text = page.content.decode()
    assert "iam:CreateUser failed: AccessDenied" in text
    assert "iam:CreateGroup failed: LimitExceeded" in text
    for name, pk in [
        ("person_retry", carol.pk),
        ("role_retry", deploy_role.pk),
        ("account_retry", account.pk),
    ]:
        assert f'action="{reverse(name, args=[pk])}"' in text
        response = client.post(reverse(name, args=[pk]), {"next": reverse("dashboard")})
        assert response.status_code == 302
        assert response["Location"] == reverse("dashboard")
    carol.refresh_from_db()
    account.refresh_from_db()
    assert carol.sync_status == "pending" and account.sync_status == "pending"
    assert AuditEvent.objects.filter(action="sync.retry").count() == 3


def test_retry_ignores_a_next_url_to_another_site(login, alice, carol):
    response = login(alice).post(
        reverse("person_retry", args=[carol.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("person_detail", args=[carol.pk])


def test_dashboard_everything_in_sync_shows_empty_states(login, alice, account):
    in_sync(alice, account)
    AwsAccount.objects.filter(pk=account.pk).update(last_reconciled_at=timezone.now())
    text = login(alice).get(reverse("dashboard")).content.decode()
    assert "Everything is in sync with AWS." in text
    assert "No request waits for a decision." in text
    assert "No grant ends in the next 24 hours." in text
    assert 'class="overdue"' not in text and "badge-error" not in text


@pytest.mark.parametrize(
    "age, overdue",
    [
        (None, True),  # never reconciled, the account is 3 hours old
        (timedelta(minutes=10), False),
        (timedelta(hours=1, minutes=59), False),
        (timedelta(hours=2, minutes=1), True),  # over 2 × the 1-hour interval
    ],
)
def test_last_reconcile_is_red_when_overdue(login, alice, account, age, overdue):
    now = timezone.now()
    AwsAccount.objects.filter(pk=account.pk).update(
        created_at=now - timedelta(hours=3),
        last_reconciled_at=now - age if age else None,
    )
    page = login(alice).get(reverse("dashboard"))
    (shown,) = page.context["accounts"]
    assert shown.reconcile_overdue is overdue
    text = page.content.decode()
    assert (f'data-overdue="{"yes" if overdue else "no"}"') in text
    assert ('class="overdue"' in text) is overdue
    assert ("never" in text) is (age is None)
    if overdue:
        assert "Reconcile runs every 1 hour; overdue after 2 hours." in text


@pytest.mark.parametrize(
    "account_age, overdue",
    [
        (timedelta(0), False),  # a fresh demo: beat's first run is to come
        (timedelta(hours=1, minutes=59), False),
        (timedelta(hours=2, minutes=1), True),  # beat is not running
    ],
)
def test_a_new_account_not_yet_reconciled_is_no_alarm_until_overdue(
    login, alice, account, account_age, overdue
):
    AwsAccount.objects.filter(pk=account.pk).update(
        created_at=timezone.now() - account_age, last_reconciled_at=None
    )
    page = login(alice).get(reverse("dashboard"))
    (shown,) = page.context["accounts"]
    assert shown.reconcile_overdue is overdue
    text = page.content.decode()
    assert ("not yet run" in text) is not overdue
    assert ("Is celery beat running?" in text) is overdue
    assert ("badge-error" in text) is overdue


def test_overdue_follows_the_reconcile_interval_setting(
    login, alice, account, settings
):
    schedule = {**settings.CELERY_BEAT_SCHEDULE}
    schedule["reconcile"] = {**schedule["reconcile"], "schedule": timedelta(hours=6)}
    settings.CELERY_BEAT_SCHEDULE = schedule
    AwsAccount.objects.filter(pk=account.pk).update(
        last_reconciled_at=timezone.now() - timedelta(hours=5)
    )
    (shown,) = login(alice).get(reverse("dashboard")).context["accounts"]
    assert shown.reconcile_overdue is False


def test_staff_see_the_dashboard_and_drift_links_others_do_not(login, alice, carol):
    admin = login(alice).get(reverse("people")).content.decode()
    assert f'href="{reverse("dashboard")}"' in admin
    assert f'href="{reverse("drift")}"' in admin
    mine = login(carol).get(reverse("home")).content.decode()
    assert reverse("dashboard") not in mine and reverse("drift") not in mine


def test_an_admin_without_totp_cannot_retry_or_reconcile(
    client, alice, account, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        tasks.reconcile_accounts, "apply_async", lambda *a, **k: sent.append(1)
    )
    client.force_login(alice.user)
    before = AuditEvent.objects.count()
    for url in (reverse("account_retry", args=[account.pk]), reverse("reconcile_now")):
        response = client.post(url)
        assert response["Location"] == reverse("mfa_activate_totp")
    assert AuditEvent.objects.count() == before and sent == []


# --- Drift --------------------------------------------------------------------


def drift(account, name, kind, *, days=0, resolved=False, **extra):
    now = timezone.now()
    return Drift.objects.create(
        account=account,
        object_type=extra.pop("object_type", "role"),
        name=name,
        kind=kind,
        first_seen=now - timedelta(days=days + 1),
        last_seen=now - timedelta(days=days),
        resolved_at=now - timedelta(days=days) if resolved else None,
        **extra,
    )


@pytest.fixture
def other_account(db):
    return AwsAccount.objects.create(account_id="210987654321", name="staging")


def test_drift_page_lists_open_first_with_expected_actual_and_dates(
    login, alice, account
):
    gone = drift(account, "payments-deploy", DriftKind.MISSING, resolved=True)
    tags = drift(
        account,
        "payments-app",
        DriftKind.TAG_CHANGED,
        days=3,
        detail="Tag Project differs",
        expected={"Project": "payments"},
        actual={"Project": "<other>"},
    )
    page = login(alice).get(reverse("drift"))
    rows = list(page.context["page"].object_list)
    assert [r.pk for r in rows] == [tags.pk, gone.pk]
    text = page.content.decode()
    assert "Tag changed or missing" in text and "Tag Project differs" in text
    assert html.escape('"Project": "<other>"') in text
    assert f"first seen {tags.first_seen:%Y-%m-%d %H:%M}" in text
    assert f"resolved {gone.resolved_at:%Y-%m-%d %H:%M}" in text


def test_drift_page_filters_by_status_kind_and_account(
    login, alice, account, other_account
):
    open_missing = drift(account, "a", DriftKind.MISSING)
    resolved = drift(account, "b", DriftKind.MISSING, resolved=True)
    other_kind = drift(account, "c", DriftKind.POLICY_EXTRA)
    elsewhere = drift(other_account, "d", DriftKind.MISSING)
    client = login(alice)

    def shown(**query):
        page = client.get(reverse("drift"), query)
        return {r.pk for r in page.context["page"].object_list}

    assert shown(status="open") == {open_missing.pk, other_kind.pk, elsewhere.pk}
    assert shown(status="resolved") == {resolved.pk}
    assert shown(kind="policy_extra") == {other_kind.pk}
    assert shown(account=other_account.pk) == {elsewhere.pk}
    assert shown(status="open", kind="missing", account=account.pk) == {open_missing.pk}
    assert shown(kind="nonsense") == set()


def test_drift_page_empty_states(login, alice, account):
    client = login(alice)
    text = client.get(reverse("drift")).content.decode()
    assert "No drift: the last reconcile found AWS matching the database." in text
    drift(account, "a", DriftKind.MISSING, resolved=True)
    text = client.get(reverse("drift"), {"status": "open"}).content.decode()
    assert "No drift matches these filters." in text


def test_reconcile_now_asks_the_worker(login, alice, monkeypatch):
    sent = []
    monkeypatch.setattr(
        tasks.reconcile_accounts, "apply_async", lambda *a, **k: sent.append(1)
    )
    response = login(alice).post(reverse("reconcile_now"), follow=True)
    assert sent == [1]
    assert b"Asked the worker to reconcile every account." in response.content


def test_reconcile_now_with_the_broker_down_says_so(login, alice, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("redis down")

    monkeypatch.setattr(tasks.reconcile_accounts, "apply_async", down)
    response = login(alice).post(reverse("reconcile_now"), follow=True)
    assert b"Could not reach the worker: redis down" in response.content


def test_reconcile_now_then_drift_shows_what_reconcile_found(
    aws_env, iam, login, alice, account, monkeypatch, settings
):
    """The button's task, run in-process against moto: a user deleted behind
    opsgate's back shows up on the page."""
    from provisioning import sync

    sync.account_baseline_sync(account_id=account.pk)
    sync.iam_user_sync(iam_user_id=alice.pk)
    iam.remove_user_from_group(GroupName="opsgate-operators", UserName="alice")
    monkeypatch.setattr(
        tasks.reconcile_accounts,
        "apply_async",
        lambda *a, **k: tasks.reconcile_accounts.apply(),
    )
    monkeypatch.setitem(settings.OPSGATE, "RECONCILE_QUIET_SECONDS", 0)
    monkeypatch.setitem(settings.OPSGATE, "RECONCILE_REPAIR", False)
    page = login(alice).post(reverse("reconcile_now"), follow=True)
    rows = list(page.context["page"].object_list)
    assert [(r.name, r.kind) for r in rows] == [("alice", "group_member_missing")]
    assert b"Removed from the operators group" in page.content

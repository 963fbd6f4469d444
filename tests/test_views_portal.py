"""Issue 14 through Django's test client: clear end states, no stale or
misleading controls, and the admin tasks done in the portal's own pages
(edit a project or a role's cross-account users, offboard, invite again)."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts_app import selectors
from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    IamUserState,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests, lifecycle

pytestmark = pytest.mark.django_db


def ask(person, role, hours=8, reason="deploy 2.3"):
    return access_requests.access_request_create(
        requester=person,
        role=role,
        reason=reason,
        duration_hours=hours,
        actor=person.user,
    )


def granted(person, role, approver, comment="ok, go"):
    return access_requests.access_request_approve(
        access_request=ask(person, role), approver=approver.user, comment=comment
    )


def text(response) -> str:
    """The page's text, tags removed and whitespace collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", body)


# --- End states: who ended it, when, why ----------------------------------------


def test_im_done_reads_you_ended_it_not_the_approvers_comment(
    login, carol, bob, deploy_role
):
    grant = granted(carol, deploy_role, bob)
    client = login(carol)
    client.post(reverse("request_done", args=[grant.pk]))
    grant.refresh_from_db()
    assert grant.status == RequestStatus.REVOKED
    assert grant.ended_by == carol.user and grant.end_comment == ""
    assert grant.decision_comment == "ok, go"  # the approver's words stay his
    page = text(client.get(reverse("home")))
    assert "You ended it." in page
    assert "Done (by the requester)" not in page
    assert selectors.request_display(grant).label == "Ended"
    assert 'class="badge badge-done"' in client.get(reverse("home")).content.decode()


def test_a_revoked_grant_names_who_revoked_it_and_why(login, carol, bob, deploy_role):
    grant = granted(carol, deploy_role, bob)
    form = re.search(
        rf'<form[^>]*action="{reverse("approver_revoke", args=[grant.pk])}".*?</form>',
        login(bob).get(reverse("approvals")).content.decode(),
        re.S,
    )
    assert 'name="comment"' in form[0]  # the approver can say why
    login(bob).post(
        reverse("approver_revoke", args=[grant.pk]), {"comment": "incident over"}
    )
    grant.refresh_from_db()
    assert grant.ended_by == bob.user and grant.end_comment == "incident over"
    page = text(login(carol).get(reverse("home")))
    assert "Revoked by bob: “incident over”" in page
    assert "You ended it" not in page
    # bob's own history says he did it.
    assert "You revoked it: “incident over”" in text(
        login(bob).get(reverse("approvals_decided"))
    )


def test_an_expired_grant_reads_expired_with_its_own_badge(
    login, carol, bob, deploy_role
):
    grant = granted(carol, deploy_role, bob)
    AccessRequest.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    lifecycle.access_requests_expire()
    grant.refresh_from_db()
    assert grant.status == RequestStatus.EXPIRED and grant.ended_by is None
    response = login(carol).get(reverse("home"))
    assert "Expired." in text(response)
    assert 'class="badge badge-expired"' in response.content.decode()
    assert "Revoked" not in text(response)


def test_the_three_end_states_read_differently(carol, bob, deploy_role):
    done, revoked = granted(carol, deploy_role, bob), None
    access_requests.access_request_revoke(access_request=done, actor=carol.user)
    revoked = granted(carol, deploy_role, bob)
    access_requests.access_request_revoke(
        access_request=revoked, actor=bob.user, comment="why not"
    )
    notes = {
        selectors.request_note(AccessRequest.objects.get(pk=r.pk), carol.user)
        for r in (done, revoked)
    }
    assert notes == {"You ended it.", "Revoked by bob: “why not”"}
    labels = {
        selectors.request_display(AccessRequest.objects.get(pk=r.pk)).key
        for r in (done, revoked)
    }
    assert labels == {"done", "revoked"}


# --- Rejections need a reason, and the requester sees it ----------------------


def test_a_rejection_without_a_reason_is_refused_on_the_field(
    login, carol, bob, deploy_role
):
    req = ask(carol, deploy_role)
    before = AuditEvent.objects.count()
    response = login(bob).post(
        reverse("decide", args=[req.pk]), {"decision": "reject", "comment": "  "}
    )
    assert response.status_code == 200
    assert "Say why you reject it" in text(response)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING
    assert AuditEvent.objects.count() == before
    # The service holds the same rule for callers without the form.
    with pytest.raises(Exception, match="Say why you reject it"):
        access_requests.access_request_reject(access_request=req, approver=bob.user)


def test_a_rejection_reason_reaches_the_requester(login, carol, bob, deploy_role):
    req = ask(carol, deploy_role)
    login(bob).post(
        reverse("decide", args=[req.pk]),
        {"decision": "reject", "comment": "use the readonly role"},
    )
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED
    assert "Rejected by bob: “use the readonly role”" in text(
        login(carol).get(reverse("home"))
    )


def test_a_project_may_make_the_rejection_reason_optional(
    login, carol, bob, deploy_role, payments
):
    Project.objects.filter(pk=payments.pk).update(rejection_reason_optional=True)
    req = ask(carol, deploy_role)
    page = text(login(bob).get(reverse("approvals")))
    assert "(optional; the requester sees it)" in page
    login(bob).post(reverse("decide", args=[req.pk]), {"decision": "reject"})
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED
    assert "Rejected by bob." in text(login(carol).get(reverse("home")))


def test_the_reject_button_asks_for_confirmation(login, carol, bob, deploy_role):
    ask(carol, deploy_role)
    body = login(bob).get(reverse("approvals")).content.decode()
    assert re.search(r'value="reject"[^>]*data-confirm="Reject carol', body)


# --- Stale and misleading controls ---------------------------------------------


def test_a_rejected_row_has_no_cancel_button(login, carol, bob, deploy_role):
    req = ask(carol, deploy_role)
    client = login(carol)
    assert "Cancel the request" in client.get(reverse("home")).content.decode()
    access_requests.access_request_reject(
        access_request=req, approver=bob.user, comment="no"
    )
    assert "Cancel the request" not in client.get(reverse("home")).content.decode()
    # The live poll reports the end with its note; the page reloads on it.
    data = client.get(reverse("request_status") + f"?ids={req.pk}").json()
    state = data["requests"][str(req.pk)]
    assert state["final"] and state["note"] == "Rejected by bob: “no”"


def test_a_role_not_in_aws_shows_no_old_arn_and_in_sync_rows_no_retry(
    login, alice, deploy_role
):
    arn = f"arn:aws:iam::123456789012:role/opsgate/{deploy_role.role_name}"
    OperationRole.objects.filter(pk=deploy_role.pk).update(arn=arn, exists_in_aws=False)
    body = (
        login(alice)
        .get(reverse("project_detail", args=[deploy_role.project_id]))
        .content.decode()
    )
    assert arn not in body
    assert "In sync" in body and "Retry the AWS sync" not in body
    OperationRole.objects.filter(pk=deploy_role.pk).update(
        exists_in_aws=True, desired_version=5, applied_version=1
    )
    body = (
        login(alice)
        .get(reverse("project_detail", args=[deploy_role.project_id]))
        .content.decode()
    )
    assert arn in body and "Retry the AWS sync" in body


def test_person_page_shows_retry_only_when_not_in_sync(login, alice, carol):
    IamUser.objects.filter(pk=carol.pk).update(applied_version=9, desired_version=9)
    page = login(alice).get(reverse("person_detail", args=[carol.pk]))
    assert "Retry AWS sync" not in page.content.decode()
    IamUser.objects.filter(pk=carol.pk).update(applied_version=1)
    page = login(alice).get(reverse("person_detail", args=[carol.pk]))
    assert "Retry AWS sync" in page.content.decode()


def test_the_only_approver_is_warned_before_asking_in_their_project(
    login, alice, bob, carol, deploy_role
):
    url = reverse("request_access") + f"?project={deploy_role.project_id}"
    assert "Nobody can decide this request" in text(login(bob).get(url))
    assert "Nobody can decide this request" not in text(login(carol).get(url))
    req = ask(bob, deploy_role)
    assert "nobody can decide it" in text(login(bob).get(reverse("approvals")))
    dashboard = text(login(alice).get(reverse("dashboard")))
    assert "nobody else can decide" in dashboard
    assert req.status == RequestStatus.PENDING


def test_an_approvers_own_request_a_role_approver_can_decide_is_not_undecidable(
    login, bob, dave, deploy_role
):
    """bob is the project's only approver, but the role has an approver of its
    own (dave, beside the project's): bob's own request can be decided."""
    deploy_role.approvers.add(dave.user)
    ask(bob, deploy_role)
    page = text(login(bob).get(reverse("approvals")))
    assert "nobody can decide it" not in page
    assert "another approver of payments must decide it" in page
    dave.user.is_active = False  # an inactive approver decides nothing
    dave.user.save()
    assert "nobody can decide it" in text(login(bob).get(reverse("approvals")))


def test_add_a_person_requires_an_email(login, alice):
    before = IamUser.objects.count()
    response = login(alice).post(reverse("person_add"), {"iam_user_name": "frank"})
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "An e-mail address is required: it is how they sign in."
    ]
    assert IamUser.objects.count() == before


def test_new_project_reports_every_field_error_at_once(login, alice, bob):
    before = Project.objects.count()
    response = login(alice).post(
        reverse("projects"),
        {"name": "aws:bad", "allowed_durations": "0, 8", "approvers": "nobody"},
    )
    errors = response.context["form"].errors
    assert set(errors) == {"name", "allowed_durations", "approvers"}
    assert "cannot start with 'aws:'" in errors["name"][0]
    assert errors["allowed_durations"] == ["Durations are 1 to 8784 hours."]
    response = login(alice).post(
        reverse("projects"), {"name": "", "allowed_durations": "9000"}
    )
    assert set(response.context["form"].errors) == {"name", "allowed_durations"}
    assert Project.objects.count() == before


# --- Admin tasks in the portal ---------------------------------------------------


def test_admin_edits_a_projects_approvers_durations_and_description(
    login, alice, bob, erin, payments
):
    client = login(alice)
    page = client.get(reverse("project_edit", args=[payments.pk]))
    assert page.context["form"]["approvers"].value() == "bob@example.com"
    response = client.post(
        reverse("project_edit", args=[payments.pk]),
        {
            "description": "Card payments",
            "approvers": "bob, erin@example.com",
            "allowed_durations": "2, 4",
            "rejection_reason_optional": "on",
        },
    )
    assert response.status_code == 302
    payments.refresh_from_db()
    assert set(payments.approvers.all()) == {bob.user, erin.user}
    assert payments.durations == [2, 4] and payments.description == "Card payments"
    assert payments.rejection_reason_optional
    event = AuditEvent.objects.get(action="project.change")
    assert event.actor == alice.user
    assert event.before["approvers"] == ["bob"]
    assert event.after["approvers"] == ["bob", "erin"]
    assert "allow_permanent" not in event.after  # unchanged fields stay out


def test_project_edit_bad_input_changes_nothing(login, alice, payments):
    response = login(alice).post(
        reverse("project_edit", args=[payments.pk]),
        {"approvers": "ghost", "allowed_durations": "0"},
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"approvers", "allowed_durations"}
    payments.refresh_from_db()
    assert payments.durations == Project.DEFAULT_DURATIONS
    assert not AuditEvent.objects.filter(action="project.change").exists()


def test_admin_edits_a_roles_cross_account_users(login, alice, deploy_role):
    arn = "arn:aws:iam::111122223333:user/zed"
    version = deploy_role.desired_version
    response = login(alice).post(
        reverse("role_edit", args=[deploy_role.pk]),
        {"extra_principal_arns": f"{arn}\n\n"},
    )
    assert response.status_code == 302
    deploy_role.refresh_from_db()
    assert deploy_role.extra_principal_arns == [arn]
    assert deploy_role.desired_version == version + 1
    event = AuditEvent.objects.get(action="role.principals")
    assert event.after == {"extra_principal_arns": [arn]}


def test_role_edit_refuses_a_bad_arn(login, alice, deploy_role):
    response = login(alice).post(
        reverse("role_edit", args=[deploy_role.pk]),
        {"extra_principal_arns": "arn:aws:iam::*:user/x"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["extra_principal_arns"]
    deploy_role.refresh_from_db()
    assert deploy_role.extra_principal_arns == []


def test_offboarding_asks_for_confirmation_then_ends_everything(
    login, alice, bob, carol, deploy_role
):
    grant = granted(carol, deploy_role, bob)
    client = login(alice)
    page = text(client.get(reverse("person_offboard", args=[carol.pk])))
    assert "1 active grant revoked" in page
    response = client.post(
        reverse("person_offboard", args=[carol.pk]), {"reason": "left"}
    )
    assert response.context["form"].errors["confirm"] == ["Tick the box to confirm."]
    carol.refresh_from_db()
    assert carol.state == IamUserState.ACTIVE
    response = client.post(
        reverse("person_offboard", args=[carol.pk]),
        {"reason": "left the company", "confirm": "on"},
    )
    assert response.status_code == 302
    carol.refresh_from_db()
    grant.refresh_from_db()
    assert carol.state == IamUserState.REMOVED and not carol.user.is_active
    assert grant.status == RequestStatus.REVOKED
    assert grant.ended_by == alice.user and grant.end_comment == "left the company"
    assert AuditEvent.objects.get(action="person.offboard").actor == alice.user


def test_admin_sends_the_invitation_again(login, alice, carol):
    client = login(alice)
    assert (
        "Send the invitation again"
        in client.get(reverse("person_detail", args=[carol.pk])).content.decode()
    )
    client.post(reverse("person_invite", args=[carol.pk]))
    (invite,) = mail.outbox
    assert invite.to == ["carol@example.com"]
    assert AuditEvent.objects.filter(action="person.invite", actor=alice.user).exists()
    carol.user.set_password("a password now")
    carol.user.save()
    client.post(reverse("person_invite", args=[carol.pk]))
    assert len(mail.outbox) == 1  # not again once a password is set


@pytest.mark.parametrize(
    "name", ["project_edit", "role_edit", "person_offboard", "person_invite"]
)
def test_admin_task_pages_are_for_admins_only(login, bob, carol, deploy_role, name):
    pk = {
        "project_edit": deploy_role.project_id,
        "role_edit": deploy_role.pk,
        "person_offboard": carol.pk,
        "person_invite": carol.pk,
    }[name]
    response = login(bob).post(reverse(name, args=[pk]), {"confirm": "on"})
    assert response.status_code == 403
    carol.refresh_from_db()
    assert carol.state == IamUserState.ACTIVE
    assert mail.outbox == []


# --- The invitation: a welcome page, next steps, no second password prompt -----


def test_invitation_link_opens_a_welcome_page_with_next_steps(client, login, alice):
    login(alice).post(
        reverse("person_add"),
        {"email": "frank@example.com", "iam_user_name": "frank", "first_name": "Frank"},
    )
    client.logout()
    (invite,) = mail.outbox
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", invite.body
    )
    page = client.get(link[1], follow=True)
    assert "Set your password for opsgate" in text(page)
    assert "Welcome, Frank" in text(page)
    set_url = page.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"password1": "correct horse battery", "password2": "correct horse battery"},
        follow=True,
    )
    words = text(done)
    assert "Your password is set" in words and "Change Password" not in words
    assert "Request access" in words and "virtual MFA device" in words
    assert reverse("account_login") in done.content.decode()
    assert IamUser.objects.get(name="frank").user.check_password(
        "correct horse battery"
    )
    # The link is single-use; the page says what to do instead.
    again = client.get(link[1], follow=True)
    assert "This link no longer works" in text(again)


def test_setting_up_totp_just_after_sign_in_asks_no_password_again(client, carol):
    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

    carol.user.set_password("a good password here")
    carol.user.save()
    client.post(
        reverse("account_login"),
        {"login": "carol@example.com", "password": "a good password here"},
    )
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200, page.get("Location")
    # Once the sign-in is older than ACCOUNT_REAUTHENTICATION_TIMEOUT, allauth
    # asks for the password again, as before.
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= 3600
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 302 and "reauthenticate" in page.url


# --- Reading the audit log and the people list --------------------------------


def test_audit_changes_are_readable_before_and_after():
    from portal.views.audit import audit_changes

    rows = audit_changes(
        {
            "status": "approved",
            "expires_at": "2026-11-30T15:42:07.123456+00:00",
            "decided_by": "bob",
        },
        {
            "status": "revoked",
            "expires_at": "2026-11-30T15:42:07.123456+00:00",
            "decided_by": "bob",
            "approvers": ["bob", "erin"],
            "allow_permanent": False,
        },
    )
    assert rows == [
        {"field": "status", "before": "approved", "after": "revoked"},
        {"field": "approvers", "before": None, "after": "bob, erin"},
        {"field": "allow permanent", "before": None, "after": "no"},
    ]
    (moved,) = audit_changes(
        {"expires_at": None}, {"expires_at": "2026-11-30T15:42:07.5+00:00"}
    )
    assert moved["before"] == "—" and re.fullmatch(
        r"2026-11-30 \d\d:42", moved["after"]
    )


def test_audit_page_shows_changes_without_microseconds_or_dicts(
    login, alice, carol, bob, deploy_role
):
    grant = granted(carol, deploy_role, bob)
    access_requests.access_request_revoke(
        access_request=grant, actor=bob.user, comment="over"
    )
    page = login(alice).get(reverse("audit")).content.decode()
    assert "{&#x27;" not in page and "{'" not in page  # no raw Python dicts
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", page)  # no microseconds
    assert re.search(r"status</span> <del>approved</del> → <ins>revoked</ins>", page)


def test_people_list_shows_approver_of_and_invitation_state(
    login, alice, bob, carol, payments
):
    carol.user.set_password("set by carol now")
    carol.user.save()
    rows = {
        m[0]: m[1]
        for m in re.findall(
            r'<tr>\s*<td data-label="IAM user"><a [^>]*>(\w+)</a>(.*?)</tr>',
            login(alice).get(reverse("people")).content.decode(),
            re.S,
        )
    }
    assert "payments" in rows["bob"] and "invited, no password yet" in rows["bob"]
    assert "signed up" in rows["carol"] and "payments" not in rows["carol"]


# --- Lists at scale: filters and paging -----------------------------------------


def test_approvals_filter_by_project_age_and_decision(
    login, alice, bob, carol, dave, deploy_role, payments, account
):
    from accounts_app.services import projects as project_services
    from accounts_app.services import roles as role_services

    other = project_services.project_create(
        actor=alice.user, name="billing", account=account, approvers=[bob.user]
    )
    other_role = role_services.role_create(
        actor=alice.user, project=other, os_user="app"
    )
    old = ask(carol, deploy_role)
    AccessRequest.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timezone.timedelta(days=2)
    )
    ask(dave, other_role)
    client = login(bob)
    everyone = client.get(reverse("approvals"))
    assert everyone.context["page"].paginator.count == 2
    by_project = client.get(reverse("approvals") + f"?project={other.pk}")
    assert [r.requester.name for r in by_project.context["pending"]] == ["dave"]
    by_age = client.get(reverse("approvals") + "?age=24h")
    assert [r.requester.name for r in by_age.context["pending"]] == ["carol"]
    foreign = client.get(reverse("approvals") + "?project=999999")
    assert foreign.status_code == 200 and foreign.context["page"].paginator.count == 0
    access_requests.access_request_reject(
        access_request=old, approver=bob.user, comment="no"
    )
    decided = reverse("approvals_decided")
    rejected = client.get(decided + "?status=rejected")
    assert [r.pk for r in rejected.context["decided"]] == [old.pk]
    assert not client.get(decided + "?status=approved").context["decided"]
    assert not client.get(decided + f"?project={other.pk}").context["decided"]
    # Each page filters on what it shows: no decision filter on the queue.
    assert "status" not in everyone.context["filters"].fields
    assert "age" not in rejected.context["filters"].fields


def test_projects_list_filters_and_pages(login, alice, bob, account):
    Project.objects.bulk_create(
        Project(name=f"team-{i:02}", account=account) for i in range(30)
    )
    client = login(alice)
    first = client.get(reverse("projects"))
    assert first.context["page"].paginator.count == 30
    assert len(first.context["projects"]) == 25
    second = client.get(reverse("projects") + "?page=2")
    assert [p.name for p in second.context["projects"]][-1] == "team-29"
    found = client.get(reverse("projects") + "?q=team-07")
    assert [p.name for p in found.context["projects"]] == ["team-07"]
    assert "No project matches" in text(client.get(reverse("projects") + "?q=zzz"))


def test_a_projects_roles_are_paged(login, alice, payments, account):
    OperationRole.objects.bulk_create(
        OperationRole(
            project=payments, account=account, os_user=f"u{i:02}", role_name=f"r{i:02}"
        )
        for i in range(30)
    )
    client = login(alice)
    first = client.get(reverse("project_detail", args=[payments.pk]))
    assert len(first.context["roles"]) == 25
    second = client.get(reverse("project_detail", args=[payments.pk]) + "?page=2")
    assert [r.os_user for r in second.context["roles"]] == [
        f"u{i:02}" for i in range(25, 30)
    ]


def test_waiting_requests_are_paged_with_their_count_read_with_the_rows(
    login, bob, carol, dave, deploy_role, monkeypatch
):
    from portal.views import approvals_queue

    monkeypatch.setattr(approvals_queue, "PENDING_PAGE", 1)
    first, second = ask(carol, deploy_role), ask(dave, deploy_role)
    client = login(bob)
    pages = [client.get(reverse("approvals") + f"?page={n}") for n in (1, 2, 9)]
    for page in pages:
        assert page.context["page"].paginator.count == 2
        assert page.context["page"].paginator.num_pages == 2
        assert "Waiting for you 2" in text(page)
    assert [r.pk for r in pages[0].context["pending"]] == [first.pk]
    assert [r.pk for r in pages[1].context["pending"]] == [second.pk]
    # A page past the end (an old link) is the last page, as before.
    assert [r.pk for r in pages[2].context["pending"]] == [second.pk]
    # Nothing decided yet: an empty history, counted without a query of its own.
    history = client.get(reverse("approvals_decided"))
    assert history.context["decided_page"].paginator.count == 0
    assert "You have not decided any request yet." in text(history)
    assert "Your decisions" in text(pages[0])  # the queue links to it


def test_worker_prints_mails_at_info_not_warning():
    from portal.celery import app

    assert app.conf.worker_redirect_stdouts_level == "INFO"


def test_the_sign_in_code_page_speaks_opsgate_and_cancel_is_secondary(client, bob):
    from tests.conftest import give_totp

    give_totp(bob.user)
    bob.user.set_password("a good password here")
    bob.user.save()
    page = client.post(
        reverse("account_login"),
        {"login": "bob@example.com", "password": "a good password here"},
        follow=True,
    )
    body = page.content.decode()
    assert "Enter your sign-in code" in text(page)
    assert re.search(r'form="logout-from-stage"[^>]*class="secondary"', body)
    assert not re.search(r'type="submit"\s*class="secondary"\s*>\s*Sign In', body)


def test_person_page_shows_who_ended_each_request(
    login, alice, bob, carol, deploy_role
):
    grant = granted(carol, deploy_role, bob)
    access_requests.access_request_revoke(access_request=grant, actor=carol.user)
    page = text(login(alice).get(reverse("person_detail", args=[carol.pk])))
    assert "Ended" in page and "carol ended it." in page


def test_approvals_pages_grants_and_decisions_each_keeping_the_filters(
    login, bob, carol, dave, deploy_role, payments, monkeypatch
):
    from portal.views import approvals_queue

    monkeypatch.setattr(approvals_queue, "GRANTS_PAGE", 1)
    monkeypatch.setattr(approvals_queue, "DECIDED_PAGE", 1)
    first, second = granted(carol, deploy_role, bob), granted(dave, deploy_role, bob)
    client = login(bob)
    kept = f"?project={payments.pk}&amp;"
    url = reverse("approvals") + f"?project={payments.pk}"
    page = client.get(url)
    assert 'aria-label="Pages of grants"' in page.content.decode()
    assert f'href="{kept}grants=2#grants-h">Next →</a>' in page.content.decode()
    later = client.get(url + "&grants=2&page=3")
    assert later.context["grants_page"].number == 2
    html = later.content.decode()
    assert f'href="{kept}page=3&amp;grants=1#grants-h">← Previous</a>' in html
    history = reverse("approvals_decided") + f"?project={payments.pk}"
    newest = client.get(history)
    assert 'aria-label="Pages of your decisions"' in newest.content.decode()
    assert f'href="{kept}page=2#history-h">Older →</a>' in newest.content.decode()
    older = client.get(history + "&page=2")
    assert older.context["decided_page"].number == 2
    assert f'href="{kept}page=1#history-h">← Newer</a>' in older.content.decode()
    # Each list's two pages hold the two grants, one each.
    for rows, pages in (("grants", (page, later)), ("decided", (newest, older))):
        pks = [r.pk for p in pages for r in p.context[rows]]
        assert sorted(pks) == sorted([first.pk, second.pk])


def test_approvals_pages_name_every_approved_project_with_or_without_roles(
    login, alice, bob, deploy_role, account
):
    from accounts_app.models import Project
    from accounts_app.services import projects as project_services

    client = login(bob)
    for name in ("approvals", "approvals_decided"):
        assert [p.name for p in client.get(reverse(name)).context["projects"]] == [
            "payments"
        ]
    # A project with no role yet is read apart, and the order stays by name.
    project_services.project_create(
        actor=alice.user, name="aardvark", account=account, approvers=[bob.user]
    )
    for name in ("approvals", "approvals_decided"):
        page = client.get(reverse(name))
        assert [p.name for p in page.context["projects"]] == ["aardvark", "payments"]
        choices = [
            label for _, label in page.context["filters"].fields["project"].choices
        ]
        assert choices == ["All my projects", "aardvark", "payments"]
    assert re.search(
        r"You approve aardvark\s*,\s*payments", text(client.get(reverse("approvals")))
    )
    # Without a project left, both pages refuse.
    Project.approvers.through.objects.filter(user=bob.user).delete()
    for name in ("approvals", "approvals_decided"):
        assert client.get(reverse(name)).status_code == 403

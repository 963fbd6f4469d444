"""Issue 13: quorum, approvers per role and tickets, enforced in the services,
audited, and re-checked by the worker before provisioning."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from accounts_app.models import AccessRequest, Approval, AuditEvent, RequestStatus
from accounts_app.services import access_requests, rules
from provisioning import sync
from tests.helpers import request

pytestmark = pytest.mark.django_db


def approve(req, person):
    return access_requests.access_request_approve(
        access_request=req, approver=person.user
    )


@pytest.fixture
def quorum2(payments, alice, bob, dave, erin):
    """payments needs two approvals; bob, dave and erin approve it."""
    payments.approvers.add(dave.user, erin.user)
    return rules.project_rules_set(
        actor=alice.user, project=payments, approvals_required=2
    )


# --- Quorum -------------------------------------------------------------------


def test_a_first_approval_of_two_leaves_the_request_pending_and_audited(
    quorum2, carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    assert req.approvals_required == 2
    version = deploy_role.desired_version
    approve(req, bob)
    req.refresh_from_db()
    deploy_role.refresh_from_db()
    assert req.status == RequestStatus.PENDING
    assert req.expires_at is None and req.decided_by is None
    assert deploy_role.desired_version == version
    event = AuditEvent.objects.get(action="request.approval", object_id=str(req.pk))
    assert event.after["approvals"] == 1
    assert event.after["approved_by"] == ["bob"]
    assert not AuditEvent.objects.filter(action="request.approve").exists()


def test_the_last_approval_makes_the_grant_and_its_clock_starts_then(
    quorum2, carol, bob, dave, deploy_role
):
    from datetime import timedelta

    from django.utils import timezone

    req = request(carol, deploy_role, hours=8)
    approve(req, bob)
    version = deploy_role.desired_version
    before = timezone.now()
    approve(req, dave)
    req.refresh_from_db()
    deploy_role.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert req.decided_by == dave.user
    assert req.expires_at >= before + timedelta(hours=8)
    assert deploy_role.desired_version == version + 1
    event = AuditEvent.objects.get(action="request.approve", object_id=str(req.pk))
    assert event.after["approved_by"] == ["bob", "dave"]
    assert event.after["approvals_required"] == 2


def test_one_person_counts_once(quorum2, carol, bob, deploy_role):
    req = request(carol, deploy_role)
    approve(req, bob)
    with pytest.raises(ValidationError, match="approved this request already"):
        approve(req, bob)
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING
    assert Approval.objects.filter(access_request=req).count() == 1


def test_the_requester_never_counts_even_as_an_approver(
    quorum2, bob, dave, erin, deploy_role
):
    req = request(bob, deploy_role)
    with pytest.raises(PermissionDenied):
        approve(req, bob)
    approve(req, dave)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING
    approve(req, erin)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


def test_a_rejection_by_any_approver_ends_the_request(
    quorum2, carol, bob, dave, erin, deploy_role
):
    req = request(carol, deploy_role)
    approve(req, bob)
    access_requests.access_request_reject(
        access_request=req, approver=dave.user, comment="not now"
    )
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED
    with pytest.raises(ValidationError, match="already rejected"):
        approve(req, erin)


def test_a_role_quorum_overrides_the_projects(
    payments, alice, carol, bob, dave, deploy_role
):
    payments.approvers.add(dave.user)
    rules.role_rules_set(actor=alice.user, role=deploy_role, approvals_required=2)
    req = request(carol, deploy_role)
    assert req.approvals_required == 2
    approve(req, bob)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.PENDING
    event = AuditEvent.objects.get(action="role.rules")
    assert event.after["approvals_required"] == 2


def test_a_project_without_rules_approves_at_the_first_approval_as_before(
    carol, bob, deploy_role
):
    req = request(carol, deploy_role)
    approve(req, bob)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    event = AuditEvent.objects.get(action="request.approve")
    assert set(event.after) == {"status", "expires_at", "decided_by"}


def test_worker_recheck_drops_a_quorum_grant_whose_approver_was_removed(
    aws_env, quorum2, carol, bob, dave, deploy_role, iam
):
    req = request(carol, deploy_role)
    approve(req, bob)
    approve(req, dave)
    deploy_role.project.approvers.remove(bob.user)
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.REVOKED
    assert "only 1 of the 2 approvals" in req.end_comment
    assert req.provisioned_at is None
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=deploy_role.role_name)


def test_worker_recheck_keeps_a_quorum_grant_whose_approvers_remain(
    aws_env, quorum2, carol, bob, dave, deploy_role, iam
):
    req = request(carol, deploy_role)
    approve(req, bob)
    approve(req, dave)
    sync.role_sync(role_id=deploy_role.pk)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.provisioned_at


def test_partial_approval_mails_the_requester_and_the_other_approvers(
    quorum2, carol, bob, deploy_role, django_capture_on_commit_callbacks
):
    req = request(carol, deploy_role)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approve(req, bob)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "1 of 2 approvals" in message.subject
    assert set(message.to) == {
        "carol@example.com",
        "dave@example.com",
        "erin@example.com",
    }
    assert "by bob" in message.body


# --- Approvers per role -------------------------------------------------------


def test_role_approvers_replacing_the_projects_decide_alone(
    payments, alice, carol, bob, dave, deploy_role
):
    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    req = request(carol, deploy_role)
    with pytest.raises(PermissionDenied):
        approve(req, bob)
    approve(req, dave)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.APPROVED


def test_role_approvers_in_addition_to_the_projects(
    payments, alice, carol, bob, dave, deploy_role
):
    rules.role_rules_set(actor=alice.user, role=deploy_role, approvers=[dave.user])
    first, second = request(carol, deploy_role), request(alice, deploy_role)
    approve(first, dave)
    approve(second, bob)
    statuses = set(
        AccessRequest.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "status", flat=True
        )
    )
    assert statuses == {RequestStatus.APPROVED}


def test_role_approvers_are_mailed_about_new_requests(
    payments, alice, carol, dave, deploy_role, django_capture_on_commit_callbacks
):
    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request(carol, deploy_role)
    assert [m.to for m in mail.outbox] == [["dave@example.com"]]


def test_worker_recheck_uses_the_roles_approvers(
    aws_env, payments, alice, carol, dave, deploy_role
):
    rules.role_rules_set(
        actor=alice.user,
        role=deploy_role,
        approvers=[dave.user],
        approvers_replace_project=True,
    )
    req = request(carol, deploy_role)
    approve(req, dave)
    rules.role_rules_set(actor=alice.user, role=deploy_role, approvers=[])
    # dave approves neither the role nor the project any more.
    sync.role_sync(role_id=deploy_role.pk)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.REVOKED


def test_a_role_approver_may_revoke_its_grants(
    payments, alice, carol, bob, dave, deploy_role
):
    rules.role_rules_set(actor=alice.user, role=deploy_role, approvers=[dave.user])
    req = approve(request(carol, deploy_role), bob)
    access_requests.access_request_revoke(access_request=req, actor=dave.user)
    assert AccessRequest.objects.get(pk=req.pk).status == RequestStatus.REVOKED


# --- Tickets ------------------------------------------------------------------


@pytest.fixture
def tickets(payments, alice):
    return rules.project_rules_set(
        actor=alice.user,
        project=payments,
        ticket_pattern=r"^OPS-[0-9]+$",
        ticket_url_template="https://tracker.example.com/browse/{ticket}",
    )


def test_a_matching_ticket_is_kept_linked_and_audited(tickets, carol, deploy_role):
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="maintenance",
        duration_hours=8,
        actor=carol.user,
        ticket="OPS-42",
    )
    assert req.ticket == "OPS-42"
    assert req.ticket_url == "https://tracker.example.com/browse/OPS-42"
    event = AuditEvent.objects.get(action="request.create")
    assert event.after["ticket"] == "OPS-42"


@pytest.mark.parametrize(
    "ticket, message",
    [
        ("", "requires a ticket"),
        ("   ", "requires a ticket"),
        ("OPS-", "does not match"),
        ("ops-12", "does not match"),
        ("OPS-12 and more", "does not match"),
        ("X" * 101, "At most 100"),
    ],
)
def test_a_missing_or_unmatched_ticket_is_refused_and_writes_nothing(
    tickets, carol, deploy_role, ticket, message
):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as info:
        access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="maintenance",
            duration_hours=8,
            actor=carol.user,
            ticket=ticket,
        )
    assert message in info.value.message_dict["ticket"][0]
    assert not AccessRequest.objects.exists()
    assert AuditEvent.objects.count() == events


# --- Bad settings -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"approvals_required": 0}, "approvals_required", "Between 1 and 3"),
        ({"approvals_required": 4}, "approvals_required", "Between 1 and 3"),
        ({"approvals_required": "two"}, "approvals_required", "from 1 to 3"),
        ({"ticket_pattern": "^OPS-[0-9+$"}, "ticket_pattern", "Not a valid"),
        ({"ticket_pattern": "(" * 201}, "ticket_pattern", "At most 200"),
        (
            {"ticket_pattern": "^T$", "ticket_url_template": "javascript:x({ticket})"},
            "ticket_url_template",
            "https://",
        ),
        (
            {"ticket_pattern": "^T$", "ticket_url_template": "https://t.example/"},
            "ticket_url_template",
            "{ticket}",
        ),
        (
            {"ticket_url_template": "https://t.example/{ticket}"},
            "ticket_pattern",
            "ticket format",
        ),
    ],
)
def test_bad_project_rules_are_refused_and_write_nothing(
    payments, alice, kwargs, field, message
):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as info:
        rules.project_rules_set(actor=alice.user, project=payments, **kwargs)
    assert message in info.value.message_dict[field][0]
    payments.refresh_from_db()
    assert (payments.approvals_required, payments.ticket_pattern) == (1, "")
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"approvals_required": 5}, "approvals_required"),
        ({"approvers_replace_project": True}, "approvers"),
    ],
)
def test_bad_role_rules_are_refused_and_write_nothing(
    deploy_role, alice, kwargs, field
):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as info:
        rules.role_rules_set(actor=alice.user, role=deploy_role, **kwargs)
    assert field in info.value.message_dict
    deploy_role.refresh_from_db()
    assert deploy_role.approvals_required is None
    assert not deploy_role.approvers_replace_project
    assert AuditEvent.objects.count() == events


def test_the_demo_seeds_a_quorum_a_break_glass_and_a_ticket_project(aws_env):
    from django.core.management import call_command

    from accounts_app.models import Project

    call_command("demo_seed")
    ledger = Project.objects.get(name="ledger")
    assert ledger.approvals_required == 2
    pending = AccessRequest.objects.get(role__project=ledger)
    assert pending.status == RequestStatus.PENDING
    assert [a.approver.username for a in pending.approvals.all()] == ["admin"]
    incident = Project.objects.get(name="incident")
    assert incident.allow_break_glass
    assert [u.username for u in incident.break_glass_people.all()] == ["dave"]
    assert Project.objects.get(name="infrastructure").ticket_pattern == r"^OPS-[0-9]+$"


# --- Who decides what, read once (approval_rules.approved_by) -------------------


def test_approved_by_answers_the_same_as_the_sql_rules(account, alice, bob, dave):
    """Every mix of project approver, role approver and "the role's approvers
    replace the project's": the ids read once decide exactly the roles that
    approval_rules.decides selects, and name the projects they approve or
    approve a role of."""
    from django.db.models import Q

    from accounts_app import approval_rules
    from accounts_app.models import OperationRole, Project
    from accounts_app.services import projects as project_services

    worlds = []
    for n, (project_side, role_side, replace) in enumerate(
        (p, r, x) for p in (False, True) for r in (False, True) for x in (False, True)
    ):
        project = project_services.project_create(
            actor=alice.user,
            name=f"mix{n}",
            account=account,
            approvers=[bob.user] if project_side else [dave.user],
        )
        role = OperationRole.objects.create(
            project=project,
            account=account,
            os_user="deploy",
            role_name=f"mix{n}-deploy",
            approvers_replace_project=replace,
        )
        if role_side:
            role.approvers.add(bob.user)
        worlds.append(role)
    for person in (bob, dave, alice):
        approved = approval_rules.approved_by(person.user)
        decided = set(
            OperationRole.objects.filter(approval_rules.decides(person.user))
            .filter(pk__in=[r.pk for r in worlds])
            .values_list("pk", flat=True)
        )
        assert {r.pk for r in worlds if approved.decides(r)} == decided
        projects = Project.objects.filter(
            Q(approvers=person.user) | Q(roles__approvers=person.user)
        )
        assert approved.project_ids == set(projects.values_list("pk", flat=True))
    # bob decides where he approves the role, or the project unless replaced.
    expected = {
        f"mix{n}"
        for n, (p, r, x) in enumerate(
            (p, r, x)
            for p in (False, True)
            for r in (False, True)
            for x in (False, True)
        )
        if r or (p and not x)
    }
    bobs = approval_rules.approved_by(bob.user)
    assert {r.project.name for r in worlds if bobs.decides(r)} == expected

"""Table-driven bad input over every web form (issue 5 item 3): add a person,
create a project, add a role, request access, decide a request.

Each case posts through the real view and asserts the field-level message in
the response, that no row was added or changed (people, logins, projects,
roles, requests, audit) and that no AWS write happened. Enqueued syncs run
in-process against moto when the transaction commits (`provisioning_runs`), so
an input that slipped through would show up as an AWS write; the positive
controls at the end prove the harness sees them."""

import html

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts_app.models import (
    AccessRequest,
    AuditEvent,
    IamUser,
    OperationRole,
    Project,
    RequestStatus,
)
from accounts_app.services import access_requests
from accounts_app.services import roles as role_services
from provisioning import aws

pytestmark = pytest.mark.django_db

GOOD_ARN = "arn:aws:iam::111122223333:user/ops/zed"
CHOICE = "Select a valid choice."
DURATIONS = "payments allows 1 hour, 8 hours, 1 day, 3 days or 7 days: pick one"
NAME_CHARS = "no spaces or other letters"
TAG_CHARS = "A project name may hold letters, digits, spaces and _ . : / = + - @ only"
LINUX = "Use a Linux user name: lowercase letters, digits, _ and -"
ARN = "Give an IAM user ARN such as arn:aws:iam::111122223333:user/alice"
TAMPERED = "the form named another"


def snapshot():
    """Row counts, plus every request's status and role (a tampered POST must
    not move a request to another role or project)."""
    models = (
        IamUser,
        get_user_model(),
        Project,
        OperationRole,
        AccessRequest,
        AuditEvent,
    )
    return (
        {m.__name__: m.objects.count() for m in models},
        sorted(AccessRequest.objects.values_list("pk", "status", "role_id")),
    )


@pytest.fixture
def world(alice, bob, carol, deploy_role, other_project, provisioning_runs):
    analyst = role_services.role_create(
        actor=alice.user, project=other_project, os_user="analyst"
    )
    app = role_services.role_create(
        actor=alice.user, project=deploy_role.project, os_user="app"
    )
    return {"analyst": analyst, "app": app, "payments": deploy_role.project}


def post(client, url, data, capture):
    before = snapshot()
    with aws.observe_calls() as calls, capture(execute=True):
        response = client.post(url, data)
    writes = [c for c in calls if aws.is_write(c)]
    return response, before, writes


def assert_refused(response, before, writes, form, field, message):
    assert response.status_code == 200
    assert form is not None, "the form was not shown again"
    errors = form.errors.get(field, [])
    assert any(message in e for e in errors), (field, dict(form.errors))
    assert html.escape(message) in response.content.decode()
    assert snapshot() == before
    assert writes == []


# --- Add a person -------------------------------------------------------------

PERSON_CASES = [
    ("frank smith", "", "iam_user_name", NAME_CHARS),
    ("f" * 65, "", "iam_user_name", "at most 64 characters (it has 65)"),
    ("jürgen", "", "iam_user_name", NAME_CHARS),
    ("\u0430lice", "", "iam_user_name", NAME_CHARS),  # Cyrillic а
    ("c\u0430rol2", "", "iam_user_name", NAME_CHARS),
    ("fr,ank", "", "iam_user_name", "Commas are not allowed"),
    ("CAROL", "", "iam_user_name", "CAROL is taken in default"),
    ("Alice", "", "iam_user_name", "(IAM names are unique regardless of case)"),
    (" frank", "", "iam_user_name", "Remove the spaces at the start or end."),
    ("frank ", "", "iam_user_name", "Remove the spaces at the start or end."),
    ("", "", "iam_user_name", "This field is required."),
    ("fr\tank", "", "iam_user_name", NAME_CHARS),
    ("ops/frank", "", "iam_user_name", NAME_CHARS),
    ("frank", "not-an-address", "email", "Enter a valid email address."),
    ("frank", "carol@example.com", "email", "already has an IAM user in default"),
    ("frank", " ", "email", "An e-mail address is required"),
]


@pytest.mark.parametrize("name, email, field, message", PERSON_CASES)
def test_add_person_refuses_bad_input(
    world, login, alice, django_capture_on_commit_callbacks, name, email, field, message
):
    # The e-mail is required: cases about the name give a good one.
    email = email or "frank@example.com"
    data = {"iam_user_name": name, "email": email, "first_name": "Frank"}
    response, before, writes = post(
        login(alice), reverse("person_add"), data, django_capture_on_commit_callbacks
    )
    form = response.context["form"] if response.context else None
    assert_refused(response, before, writes, form, field, message)


# --- Create a project ---------------------------------------------------------

PROJECT_CASES = [
    ("", "8", "name", "This field is required."),
    ("   ", "8", "name", "A project name is required."),
    ("p" * 257, "8", "name", "at most 256 characters (it has 257)"),
    ("${aws:username}", "8", "name", "remove '$' '{' '}'"),
    ("pay*", "8", "name", "remove '*'"),
    ("pay?", "8", "name", "remove '?'"),
    ('pay"ments', "8", "name", "remove '\"'"),
    ("pay'ments", "8", "name", 'remove "\'"'),
    ("pay<b>", "8", "name", "remove '<' '>'"),
    ("pay\nments", "8", "name", TAG_CHARS),
    ("aws:payments", "8", "name", "cannot start with 'aws:'"),
    ("AWS:payments", "8", "name", "cannot start with 'aws:'"),
    (" payments2", "8", "name", "Remove the spaces at the start or end."),
    ("payments2 ", "8", "name", "Remove the spaces at the start or end."),
    ("payments", "8", "name", "A project named 'payments' already exists."),
    ("ok", "eight", "allowed_durations", "Use whole numbers of hours"),
    ("ok", "", "allowed_durations", "This field is required."),
    ("ok", "0", "allowed_durations", "Durations are 1 to 8784 hours."),
    ("ok", "-8", "allowed_durations", "Durations are 1 to 8784 hours."),
    ("ok", "8, 9000", "allowed_durations", "Durations are 1 to 8784 hours."),
]


@pytest.mark.parametrize("name, durations, field, message", PROJECT_CASES)
def test_create_project_refuses_bad_input(
    world,
    login,
    alice,
    bob,
    django_capture_on_commit_callbacks,
    name,
    durations,
    field,
    message,
):
    data = {
        "name": name,
        "allowed_durations": durations,
        "approvers": "bob@example.com",
    }
    response, before, writes = post(
        login(alice), reverse("projects"), data, django_capture_on_commit_callbacks
    )
    assert_refused(response, before, writes, response.context["form"], field, message)


# --- Add a role (OS user, role name, cross-account users) ---------------------

ROLE_CASES = [
    ({"os_user": "root"}, "os_user", "root is not allowed"),
    ({"os_user": "deploy;rm -rf /"}, "os_user", LINUX),
    ({"os_user": "$(id)"}, "os_user", LINUX),
    ({"os_user": "a|b"}, "os_user", LINUX),
    ({"os_user": "`id`"}, "os_user", LINUX),
    ({"os_user": "ops&&x"}, "os_user", LINUX),
    ({"os_user": "Deploy"}, "os_user", LINUX),
    ({"os_user": "a" * 33}, "os_user", "At most 32 characters (this one has 33)."),
    ({"os_user": ""}, "os_user", "This field is required."),
    ({"os_user": " batch"}, "os_user", LINUX),
    ({"os_user": "deploy"}, "os_user", "payments already has a role for deploy."),
    ({"os_user": "batch", "role_name": "has space"}, "role_name", NAME_CHARS),
    ({"os_user": "batch", "role_name": "d\u0435ploy"}, "role_name", NAME_CHARS),
    (
        {"os_user": "batch", "role_name": "r" * 57},
        "role_name",
        "At most 56 characters with the path /opsgate/ (this one has 57).",
    ),
    (
        {"os_user": "batch", "role_name": "PAYMENTS-DEPLOY"},
        "role_name",
        "names are unique regardless of case",
    ),
    ({"os_user": "batch", "role_name": " batch"}, "role_name", "Remove the spaces"),
    *[
        ({"os_user": "batch", "extra_principal_arns": arn}, "extra_principal_arns", ARN)
        for arn in [
            "arn:aws:iam::111122223333:user/*",
            "arn:aws:iam::111122223333:user/al?ce",
            "arn:aws:iam::111122223333:root",
            "111122223333",
            "*",
            "arn:aws:iam::111122223333:role/admin",
            "arn:aws:sts::111122223333:assumed-role/admin/bob",
            "arn:aws:sts::111122223333:federated-user/bob",
            "arn:aws:iam::11112222333:user/alice",
            "arn:aws:iam::1111222233334:user/alice",
            "arn:aws:iam:us-east-1:111122223333:user/alice",
            "arn:aws:iam::111122223333:group/ops",
            f"{GOOD_ARN}\narn:aws:iam::111122223333:root",
        ]
    ],
]


@pytest.mark.parametrize("data, field, message", ROLE_CASES)
def test_add_role_refuses_bad_input(
    world, login, alice, django_capture_on_commit_callbacks, data, field, message
):
    url = reverse("project_detail", args=[world["payments"].pk])
    response, before, writes = post(
        login(alice), url, data, django_capture_on_commit_callbacks
    )
    assert_refused(response, before, writes, response.context["form"], field, message)


# --- Request access -----------------------------------------------------------

REQUEST_CASES = [
    ({"duration": "5"}, "duration", DURATIONS),
    ({"duration": "0"}, "duration", DURATIONS),
    ({"duration": "-1"}, "duration", DURATIONS),
    ({"duration": "100000"}, "duration", DURATIONS),
    ({"duration": "8.5"}, "duration", DURATIONS),
    ({"duration": "permanent"}, "duration", DURATIONS),  # payments allows none
    ({"duration": ""}, "duration", "This field is required."),
    ({"reason": ""}, "reason", "Say why you need this access."),
    ({"reason": "   "}, "reason", "Say why you need this access."),
    ({"reason": "x" * 2001}, "reason", "at most 2000 characters (it has 2001)"),
    # a role of a project the form did not offer, or none at all
    ({"role": "analyst"}, "role", CHOICE),
    ({"role": "999999"}, "role", CHOICE),
    ({"role": "abc"}, "role", CHOICE),
]


def _request_data(world, data):
    role = data.get("role", "deploy")
    role = str(world[role].pk) if role in world else role
    return {"reason": "INC-1", "duration": "8", **data, "role": role}


@pytest.mark.parametrize("data, field, message", REQUEST_CASES)
def test_request_access_refuses_bad_input(
    world, login, carol, django_capture_on_commit_callbacks, data, field, message
):
    world["deploy"] = OperationRole.objects.get(os_user="deploy")
    url = reverse("request_access") + f"?project={world['payments'].pk}"
    response, before, writes = post(
        login(carol),
        url,
        _request_data(world, data),
        django_capture_on_commit_callbacks,
    )
    assert_refused(response, before, writes, response.context["form"], field, message)


@pytest.mark.parametrize(
    "project, role, form_name, field, message",
    [
        # The URL names the other project; the POST a payments role.
        ("other", "deploy", "form", "role", CHOICE),
        # The URL names the project whose role it is; the form did not offer it.
        ("payments", "analyst", "form", "role", CHOICE),
        ("999999", "deploy", "chooser", "project", "There is no such project"),
        ("abc", "deploy", "chooser", "project", "There is no such project"),
        ("", "deploy", "chooser", "project", "This field is required."),
    ],
)
def test_request_access_refuses_a_tampered_project(
    world,
    login,
    carol,
    other_project,
    django_capture_on_commit_callbacks,
    project,
    role,
    form_name,
    field,
    message,
):
    world["deploy"] = OperationRole.objects.get(os_user="deploy")
    pk = {"other": other_project.pk, "payments": world["payments"].pk}.get(
        project, project
    )
    url = reverse("request_access") + (f"?project={pk}" if pk else "")
    response, before, writes = post(
        login(carol),
        url,
        _request_data(world, {"role": role}),
        django_capture_on_commit_callbacks,
    )
    form = response.context[form_name]
    assert_refused(response, before, writes, form, field, message)


def test_request_access_refuses_a_second_pending_request(
    world, login, carol, django_capture_on_commit_callbacks
):
    deploy = OperationRole.objects.get(os_user="deploy")
    access_requests.access_request_create(
        requester=carol, role=deploy, reason="r", duration_hours=8, actor=carol.user
    )
    url = reverse("request_access") + f"?project={world['payments'].pk}"
    data = {"role": deploy.pk, "reason": "again", "duration": "8"}
    response, before, writes = post(
        login(carol), url, data, django_capture_on_commit_callbacks
    )
    message = "You already have a pending request for this role."
    assert_refused(response, before, writes, response.context["form"], "role", message)


# --- Decide a request ---------------------------------------------------------

DECIDE_CASES = [
    ({}, "decision", "Choose approve or reject."),
    ({"decision": ""}, "decision", "Choose approve or reject."),
    ({"decision": "APPROVE"}, "decision", "Choose approve or reject."),
    ({"decision": "maybe"}, "decision", "Choose approve or reject."),
    (
        {"decision": "approve", "comment": "x" * 2001},
        "comment",
        "at most 2000 characters (it has 2001)",
    ),
    # Tampered: another project's role, another role of the same project,
    # another project, garbage.
    ({"decision": "approve", "role": "analyst"}, "role", TAMPERED),
    ({"decision": "approve", "role": "app"}, "role", TAMPERED),
    ({"decision": "reject", "role": "app"}, "role", TAMPERED),
    ({"decision": "approve", "project": "other"}, "project", TAMPERED),
    ({"decision": "approve", "role": "abc"}, "role", "Enter a whole number."),
]


@pytest.mark.parametrize("data, field, message", DECIDE_CASES)
def test_decide_refuses_bad_input(
    world,
    login,
    bob,
    carol,
    other_project,
    django_capture_on_commit_callbacks,
    data,
    field,
    message,
):
    deploy = OperationRole.objects.get(os_user="deploy")
    req = access_requests.access_request_create(
        requester=carol, role=deploy, reason="r", duration_hours=8, actor=carol.user
    )
    ids = {
        "analyst": world["analyst"].pk,
        "app": world["app"].pk,
        "other": other_project.pk,
    }
    posted = {
        "role": deploy.pk,
        "project": deploy.project_id,
        **{k: ids.get(v, v) for k, v in data.items()},
    }
    if not data:
        posted = {}
    response, before, writes = post(
        login(bob),
        reverse("decide", args=[req.pk]),
        posted,
        django_capture_on_commit_callbacks,
    )
    shown = [r for r in response.context["pending"] if r.pk == req.pk]
    form = getattr(shown[0], "form", None) if shown else None
    assert_refused(response, before, writes, form, field, message)
    req.refresh_from_db()
    assert (req.status, req.role_id) == (RequestStatus.PENDING, deploy.pk)


def test_bad_input_cases_are_at_least_forty():
    total = (
        len(PERSON_CASES)
        + len(PROJECT_CASES)
        + len(ROLE_CASES)
        + len(REQUEST_CASES)
        + len(DECIDE_CASES)
    )
    assert total >= 40


# --- Positive controls: the harness sees writes --------------------------------


def test_harness_sees_the_aws_writes_of_a_valid_person(
    aws_env, world, login, alice, django_capture_on_commit_callbacks
):
    data = {"iam_user_name": "frank", "email": "frank@example.com"}
    response, before, writes = post(
        login(alice), reverse("person_add"), data, django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    assert snapshot() != before
    assert "iam:CreateUser" in writes


def test_harness_sees_the_aws_writes_of_a_valid_decision(
    aws_env, world, login, bob, carol, django_capture_on_commit_callbacks
):
    deploy = OperationRole.objects.get(os_user="deploy")
    req = access_requests.access_request_create(
        requester=carol, role=deploy, reason="r", duration_hours=8, actor=carol.user
    )
    data = {"decision": "approve", "role": deploy.pk, "project": deploy.project_id}
    response, before, writes = post(
        login(bob),
        reverse("decide", args=[req.pk]),
        data,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302
    assert snapshot() != before
    assert "iam:CreateRole" in writes

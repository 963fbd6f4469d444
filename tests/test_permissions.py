"""Every view × every persona: requesters see only their own requests,
approvers only their projects, admin pages only staff; state changes are
POST-only with CSRF. A refused call writes nothing."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.models import AccessRequest, AuditEvent, RequestStatus
from accounts_app.services import access_requests

pytestmark = pytest.mark.django_db

PERSONAS = [
    "anonymous",
    "requester",
    "other_requester",
    "approver",
    "other_approver",
    "admin",
]
LOGIN = "login"  # a redirect to the sign-in page

# view name, method, URL argument, then the status per persona in PERSONAS order.
MATRIX = [
    ("home", "get", None, [LOGIN, 200, 200, 200, 200, 200]),
    ("request_access", "get", None, [LOGIN, 200, 200, 200, 200, 200]),
    ("request_status", "get", None, [LOGIN, 200, 200, 200, 200, 200]),
    ("request_cancel", "post", "request", [LOGIN, 302, 404, 404, 404, 404]),
    ("request_done", "post", "request", [LOGIN, 302, 404, 404, 404, 404]),
    ("request_check", "post", "request", [LOGIN, 302, 404, 404, 404, 404]),
    ("approvals", "get", None, [LOGIN, 403, 403, 200, 200, 403]),
    ("decide", "post", "request", [LOGIN, 404, 404, 200, 404, 404]),
    ("approver_revoke", "post", "request", [LOGIN, 404, 404, 302, 404, 404]),
    ("people", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("person_add", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("person_add", "post", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("person_detail", "get", "person", [LOGIN, 403, 403, 403, 403, 200]),
    ("person_retry", "post", "person", [LOGIN, 403, 403, 403, 403, 302]),
    ("person_console_password", "post", "person", [LOGIN, 403, 403, 403, 403, 302]),
    ("projects", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("projects", "post", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("project_detail", "get", "project", [LOGIN, 403, 403, 403, 403, 200]),
    ("project_detail", "post", "project", [LOGIN, 403, 403, 403, 403, 200]),
    ("role_retry", "post", "role", [LOGIN, 403, 403, 403, 403, 302]),
    ("audit", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("dashboard", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("account_retry", "post", "account", [LOGIN, 403, 403, 403, 403, 302]),
    ("aws_accounts", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("aws_accounts", "post", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("aws_accounts_discover", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("aws_account_check", "post", "account", [LOGIN, 403, 403, 403, 403, 302]),
    ("aws_account_edit", "get", "account", [LOGIN, 403, 403, 403, 403, 200]),
    ("aws_account_edit", "post", "account", [LOGIN, 403, 403, 403, 403, 200]),
    ("drift", "get", None, [LOGIN, 403, 403, 403, 403, 200]),
    ("reconcile_now", "post", None, [LOGIN, 403, 403, 403, 403, 302]),
]


@pytest.fixture
def world(
    alice, bob, carol, dave, erin, deploy_role, other_project, login, monkeypatch
):
    from provisioning import tasks

    # "Reconcile now" publishes nothing to the real broker here.
    monkeypatch.setattr(tasks.reconcile_accounts, "apply_async", lambda: None)
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="r",
        duration_hours=8,
        actor=carol.user,
    )
    return {
        "personas": {
            "requester": carol,
            "other_requester": dave,
            "approver": bob,
            "other_approver": erin,
            "admin": alice,
        },
        "args": {
            "request": req.pk,
            "person": carol.pk,
            "project": deploy_role.project_id,
            "role": deploy_role.pk,
            "account": deploy_role.account_id,
        },
        "request": req,
        "login": login,
    }


def _state():
    return (
        AuditEvent.objects.count(),
        list(AccessRequest.objects.values_list("status", flat=True)),
    )


@pytest.mark.parametrize("persona_index, persona", list(enumerate(PERSONAS)))
@pytest.mark.parametrize(
    "name, method, arg, expected", MATRIX, ids=[f"{m[1]} {m[0]}" for m in MATRIX]
)
def test_view_permissions(
    world, client, persona_index, persona, name, method, arg, expected
):
    if persona != "anonymous":
        client = world["login"](world["personas"][persona])
    url = reverse(name, args=[world["args"][arg]] if arg else [])
    before = _state()
    response = getattr(client, method)(url)
    want = expected[persona_index]
    if want == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    else:
        assert response.status_code == want
    if want in (LOGIN, 403, 404):
        assert _state() == before


@pytest.mark.parametrize(
    "name, arg",
    [
        ("request_cancel", "request"),
        ("request_done", "request"),
        ("request_check", "request"),
        ("decide", "request"),
        ("approver_revoke", "request"),
        ("person_retry", "person"),
        ("person_console_password", "person"),
        ("role_retry", "role"),
        ("account_retry", "account"),
        ("aws_account_check", "account"),
        ("reconcile_now", None),
    ],
)
def test_state_changes_refuse_get(world, name, arg):
    persona = {
        "request_cancel": "requester",
        "request_done": "requester",
        "request_check": "requester",
    }.get(name, "approver" if name in ("decide", "approver_revoke") else "admin")
    client = world["login"](world["personas"][persona])
    before = _state()
    url = reverse(name, args=[world["args"][arg]] if arg else [])
    assert client.get(url).status_code == 405
    assert _state() == before


def test_post_without_csrf_token_is_refused_and_writes_nothing(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["personas"]["requester"].user)
    before = _state()
    response = client.post(reverse("request_cancel", args=[world["args"]["request"]]))
    assert response.status_code == 403
    assert _state() == before
    world["request"].refresh_from_db()
    assert world["request"].status == RequestStatus.PENDING


def test_status_endpoint_lists_only_my_own_requests(world):
    client = world["login"](world["personas"]["other_requester"])
    req = world["request"]
    data = client.get(reverse("request_status"), {"ids": str(req.pk)}).json()
    assert str(req.pk) not in data["requests"]
    mine = world["login"](world["personas"]["requester"])
    assert str(req.pk) in mine.get(reverse("request_status")).json()["requests"]


def test_approver_queue_lists_only_their_projects(world, deploy_role):
    erin_page = world["login"](world["personas"]["other_approver"]).get(
        reverse("approvals")
    )
    assert erin_page.context["pending"] == []
    bob_page = world["login"](world["personas"]["approver"]).get(reverse("approvals"))
    assert [r.pk for r in bob_page.context["pending"]] == [world["request"].pk]


def test_home_shows_only_my_own_requests(world):
    page = world["login"](world["personas"]["other_requester"]).get(reverse("home"))
    assert list(page.context["access_requests"]) == []

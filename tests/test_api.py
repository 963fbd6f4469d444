"""The REST API: every endpoint through the same services and permission rules
as the pages, the same audit rows (actor = the token's owner), RFC 9457
problems with field messages, scopes, TOTP on decisions, the rate limit, and
the committed OpenAPI document."""

import json
from pathlib import Path

import pytest
from django.test import Client

from accounts_app.models import AccessRequest, AuditEvent, RequestStatus
from accounts_app.services import tokens
from portal.api.schemas import NO_NUL
from tests.conftest import give_totp, totp_code
from tests.helpers import grant, request
from tests.test_accounts import hub  # noqa: F401  (the accounts fixture)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
ALL = ["read", "request", "approve"]


class Api:
    """A test client acting with one person's token."""

    def __init__(self, person, scopes=ALL):
        _, self.secret = tokens.token_create(
            owner=person.user, name="test", scopes=scopes, days=1, actor=person.user
        )
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {self.secret}")

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", params)

    def post(self, path, body=None):
        return self.client.post(
            f"/api/v1{path}", json.dumps(body or {}), content_type="application/json"
        )


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


@pytest.fixture
def approver(bob):
    give_totp(bob.user)
    return bob


def _create(api, role, **extra):
    body = {
        "project": role.project.name,
        "os_user": role.os_user,
        "reason": "INC-1 deploy",
        "duration_hours": 8,
        **extra,
    }
    return api.post("/requests", body)


# --- Authentication ---------------------------------------------------------------


def test_no_token_unknown_token_and_revoked_token_get_401(carol):
    assert _problem(Client().get("/api/v1/requests"), 401)["detail"]
    bad = Client(HTTP_AUTHORIZATION="Bearer ogp_nope")
    _problem(bad.get("/api/v1/requests"), 401)
    api = Api(carol)
    assert api.get("/requests").status_code == 200
    tokens.token_revoke(token=tokens.token_authenticate(api.secret), actor=carol.user)
    _problem(api.get("/requests"), 401)


def test_missing_scope_is_403_and_writes_nothing(carol, deploy_role):
    api = Api(carol, scopes=["read"])
    body = _problem(_create(api, deploy_role), 403)
    assert "request" in body["detail"]
    assert not AccessRequest.objects.exists()


def test_rate_limit_per_token(carol, settings):
    settings.OPSGATE = {**settings.OPSGATE, "API_RATE_PER_MINUTE": 3}
    api, other = Api(carol), Api(carol)
    codes = [api.get("/requests").status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200]
    if codes[3] == 200:  # the minute turned over between the calls
        codes.append(api.get("/requests").status_code)
    assert 429 in codes[3:]
    assert other.get("/requests").status_code == 200


def test_device_login_starts_are_rate_limited_per_address(db):
    client = Client()
    codes = [
        client.post(
            "/api/v1/device/start", "{}", content_type="application/json"
        ).status_code
        for _ in range(11)
    ]
    if codes[10] == 200:  # the minute turned over between the calls
        codes.append(
            client.post(
                "/api/v1/device/start", "{}", content_type="application/json"
            ).status_code
        )
    assert codes[:10] == [200] * 10 and 429 in codes[10:]


def test_device_login_start_refuses_a_body_that_is_not_a_json_object(db):
    for body in ("[null, null]", "3", '"x"'):
        response = Client().post(
            "/api/v1/device/start", body, content_type="application/json"
        )
        assert _problem(response, 400)["detail"] == "The body must be a JSON object."


def test_audit_dates_must_be_written_as_days_not_numbers(alice):
    give_totp(alice.user)
    api = Api(alice)
    assert "until" in _problem(api.get("/audit", until="0"), 400)["errors"]
    assert "since" in _problem(api.get("/audit", since="20260101"), 400)["errors"]
    assert api.get("/audit", until="2026-02-01").status_code == 200


def test_the_schema_declares_that_query_text_holds_no_nul_byte(alice):
    """A NUL byte in a query string is refused (400) before any view: the
    schema says so, so a client generating schema-valid input never sends one."""
    schema = Client().get("/api/v1/openapi.json").json()
    text_params = [
        (path, param["name"], param["schema"])
        for path, ops in schema["paths"].items()
        for op in ops.values()
        for param in op.get("parameters", [])
        if param["in"] == "query"
        and "string" in json.dumps(param["schema"])
        and "format" not in json.dumps(param["schema"])
    ]
    assert {(path, name) for path, name, _ in text_params} >= {
        ("/api/v1/requests", "project"),
        ("/api/v1/people", "q"),
        ("/api/v1/audit", "person"),
    }
    for path, name, param in text_params:
        assert json.dumps(NO_NUL)[1:-1] in json.dumps(param), (path, name)
    give_totp(alice.user)
    _problem(Api(alice).get("/people", q="a\x00b"), 400)


# --- Requests ---------------------------------------------------------------------


def test_create_request_writes_the_pages_audit_row(carol, deploy_role):
    response = _create(Api(carol), deploy_role)
    assert response.status_code == 201, response.content
    body = response.json()
    req = AccessRequest.objects.get()
    assert body["id"] == req.pk and body["state"] == "pending"
    assert (req.requester, req.role, req.duration_hours) == (carol, deploy_role, 8)
    event = AuditEvent.objects.get(action="request.create")
    assert event.actor == carol.user and event.after["reason"] == "INC-1 deploy"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"reason": "   "}, "reason"),
        ({"duration_hours": 5}, "duration_hours"),
        ({"duration_hours": None}, "duration_hours"),
        ({"os_user": "nobody"}, "os_user"),
        ({"project": "nope"}, "project"),
        ({"reason": "x" * 2001}, "reason"),
        ({"duration_hours": "many"}, "duration_hours"),
    ],
)
def test_bad_request_input_gets_field_messages_and_writes_nothing(
    carol, deploy_role, extra, field
):
    body = _problem(_create(Api(carol), deploy_role, **extra), 400)
    assert field in body["errors"], body
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.create").exists()


def test_second_pending_request_gets_the_forms_message(carol, deploy_role):
    api = Api(carol)
    _create(api, deploy_role)
    body = _problem(_create(api, deploy_role), 400)
    assert body["errors"]["role"] == [
        "You already have a pending request for this role."
    ]


def test_list_mine_filters_and_pages(carol, dave, deploy_role, other_project, alice):
    from accounts_app.services import roles

    ops = roles.role_create(actor=alice.user, project=other_project, os_user="ops")
    mine = request(carol, deploy_role)
    request(carol, ops)
    request(dave, deploy_role)
    api = Api(carol)
    body = api.get("/requests").json()
    assert body["count"] == 2 and body["pages"] == 1
    assert {r["requester"] for r in body["items"]} == {"carol"}
    only = api.get("/requests", project="payments").json()
    assert [r["id"] for r in only["items"]] == [mine.pk]
    assert api.get("/requests", status="approved").json()["count"] == 0
    _problem(api.get("/requests", status="bogus"), 400)
    assert api.get("/requests", page=9).json()["items"] == []


def test_others_requests_are_404(carol, dave, deploy_role):
    req = request(dave, deploy_role)
    api = Api(carol)
    _problem(api.get(f"/requests/{req.pk}"), 404)
    _problem(api.get(f"/requests/{req.pk}/status"), 404)
    _problem(api.post(f"/requests/{req.pk}/cancel"), 404)
    assert AccessRequest.objects.get().status == RequestStatus.PENDING


def test_get_status_and_cancel(carol, deploy_role):
    req = request(carol, deploy_role)
    api = Api(carol)
    assert api.get(f"/requests/{req.pk}").json()["reason"] == "deploy"
    status = api.get(f"/requests/{req.pk}/status").json()
    assert status == {
        "id": req.pk,
        "status": "pending",
        "state": "pending",
        "label": "Waiting for approval",
        "detail": "",
        "final": False,
    }
    assert api.post(f"/requests/{req.pk}/cancel").json()["status"] == "cancelled"
    assert AuditEvent.objects.get(action="request.cancel").actor == carol.user
    body = _problem(api.post(f"/requests/{req.pk}/cancel"), 400)
    assert "already cancelled" in body["detail"]


# --- Approvals -------------------------------------------------------------------


def test_approver_lists_pending_for_their_projects_only(carol, approver, deploy_role):
    req = request(carol, deploy_role)
    assert [r["id"] for r in Api(approver).get("/approvals").json()["items"]] == [
        req.pk
    ]
    _problem(Api(carol).get("/approvals"), 403)


def test_approve_needs_a_fresh_totp_code_used_once(carol, dave, approver, deploy_role):
    first, second = request(carol, deploy_role), request(dave, deploy_role)
    api = Api(approver)
    body = _problem(api.post(f"/approvals/{first.pk}/approve", {"totp": "000000"}), 400)
    assert "totp" in body["errors"]
    _problem(api.post(f"/approvals/{first.pk}/approve", {}), 400)
    assert AccessRequest.objects.get(pk=first.pk).status == RequestStatus.PENDING
    code = totp_code()
    ok = api.post(f"/approvals/{first.pk}/approve", {"totp": code})
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "approved"
    event = AuditEvent.objects.get(action="request.approve")
    assert event.actor == approver.user
    # The same code again: refused (one use, as at the portal's login).
    again = api.post(f"/approvals/{second.pk}/approve", {"totp": code})
    assert "totp" in _problem(again, 400)["errors"]
    assert AccessRequest.objects.get(pk=second.pk).status == RequestStatus.PENDING


def test_reject_needs_a_comment_and_totp(carol, approver, deploy_role):
    req = request(carol, deploy_role)
    api = Api(approver)
    body = _problem(api.post(f"/approvals/{req.pk}/reject", {"totp": totp_code()}), 400)
    assert "comment" in body["errors"]
    response = api.post(
        f"/approvals/{req.pk}/reject", {"totp": totp_code(), "comment": "no ticket"}
    )
    assert response.json()["status"] == "rejected"
    assert AuditEvent.objects.get(action="request.reject").actor == approver.user


def test_approver_cannot_approve_own_request(approver, deploy_role):
    req = request(approver, deploy_role)
    body = _problem(
        Api(approver).post(f"/approvals/{req.pk}/approve", {"totp": totp_code()}), 403
    )
    assert body["detail"] == "Nobody may decide their own request."


def test_approver_of_another_project_gets_404(carol, erin, deploy_role, other_project):
    give_totp(erin.user)
    req = request(carol, deploy_role)
    _problem(Api(erin).post(f"/approvals/{req.pk}/approve", {"totp": totp_code()}), 404)
    assert AccessRequest.objects.get().status == RequestStatus.PENDING


def test_approve_scope_is_needed(carol, approver, deploy_role):
    req = request(carol, deploy_role)
    api = Api(approver, scopes=["read", "request"])
    _problem(api.post(f"/approvals/{req.pk}/approve", {"totp": totp_code()}), 403)


def test_approver_without_totp_is_refused_like_the_pages(carol, bob, deploy_role):
    request(carol, deploy_role)
    _problem(Api(bob).get("/approvals"), 403)


# --- Grants ------------------------------------------------------------------------


def test_grants_show_connection_details_and_end(aws_env, carol, approver, deploy_role):
    req = grant(carol, deploy_role, approver)
    api = Api(carol)
    (item,) = api.get("/grants").json()
    assert item["id"] == req.pk
    assert item["role_arn"].endswith(f"role/opsgate/{deploy_role.role_name}")
    assert item["mfa_serial"] == "arn:aws:iam::123456789012:mfa/carol"
    assert item["role_session_name"] == "carol"
    assert item["profile_name"] in item["aws_config"]
    assert item["instances"] == []
    assert Api(approver).get("/grants").json() == []
    ended = api.post(f"/grants/{req.pk}/end")
    assert ended.json()["status"] == "revoked"
    assert AuditEvent.objects.get(action="request.revoke").actor == carol.user
    assert api.get("/grants").json() == []


# --- Staff reads --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/people", "/projects", "/roles", "/audit"])
def test_staff_reads_are_for_staff_only(carol, alice, deploy_role, path):
    give_totp(alice.user)
    _problem(Api(carol).get(path), 403)
    assert Api(alice).get(path).status_code == 200


def test_staff_reads_content(alice, carol, deploy_role):
    give_totp(alice.user)
    api = Api(alice)
    people = api.get("/people", q="car").json()
    assert [p["iam_user_name"] for p in people["items"]] == ["carol"]
    (project,) = api.get("/projects").json()
    assert project["name"] == "payments" and project["approvers"] == ["bob"]
    assert [r["os_user"] for r in project["roles"]] == ["deploy"]
    assert [r["role_name"] for r in api.get("/roles").json()] == [deploy_role.role_name]
    audit = api.get("/audit", action="role.add").json()
    assert audit["count"] == 1 and audit["items"][0]["actor"] == "alice"
    assert api.get("/audit", person="alice", project=project["id"]).json()["count"]
    body = _problem(api.get("/audit", since="2026-02-02", until="2026-02-01"), 400)
    assert body["errors"]["until"] == ["The end date is before the start date."]
    assert "project" in _problem(api.get("/audit", project=999999), 400)["errors"]


# --- Schema ------------------------------------------------------------------------


def test_committed_schema_equals_the_generated_one():
    from portal.api.export import schema_json

    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == schema_json(), (
        "docs/openapi.json is stale: python -m portal.api.export > docs/openapi.json"
    )


def test_schema_is_served_without_a_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    errors = schema["paths"]["/api/v1/requests"]["post"]["responses"]["400"]
    assert "application/problem+json" in errors["content"]


def test_docs_page_uses_only_local_assets(client):
    import re

    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(s.endswith("swagger-ui-bundle.js") for s in sources)
    assert all(s.startswith("/") for s in sources), sources
    assert "script-src 'self'" in page["Content-Security-Policy"]


# --- Endpoint × persona matrix (as tests/test_permissions.py does for pages) --

PERSONAS = ["anonymous", "carol", "dave", "bob", "erin", "alice"]
MINE = {"carol": 200}  # only the requester sees or changes their own
STAFF = {"alice": 200}
EVERYONE = dict.fromkeys(PERSONAS[1:], 200)
MATRIX = [
    ("GET", "/me", EVERYONE, 403),
    ("GET", "/requests", EVERYONE, 403),
    ("GET", "/requests/{pending}", MINE, 404),
    ("GET", "/requests/{pending}/status", MINE, 404),
    ("POST", "/requests/{pending}/cancel", MINE, 404),
    ("GET", "/approvals", {"bob": 200, "erin": 200}, 403),
    ("POST", "/approvals/{pending}/approve", {"bob": 200}, 404),
    ("POST", "/approvals/{pending}/reject", {"bob": 200}, 404),
    ("GET", "/grants", EVERYONE, 403),
    ("POST", "/grants/{grant}/end", MINE, 404),
    ("GET", "/people", STAFF, 403),
    ("GET", "/projects", STAFF, 403),
    ("GET", "/roles", STAFF, 403),
    ("GET", "/audit", STAFF, 403),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "allowed", "refused"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, _, _ in MATRIX],
)
def test_endpoint_persona_matrix(
    request, method, path, allowed, refused, persona, deploy_role, alice
):
    from accounts_app.services import roles

    people = {n: request.getfixturevalue(n) for n in PERSONAS[1:]}
    request.getfixturevalue("other_project")
    for name in ("bob", "erin", "alice"):
        give_totp(people[name].user)
    ops = roles.role_create(
        actor=alice.user, project=deploy_role.project, os_user="ops"
    )
    ids = {
        "pending": request_ids(people["carol"], deploy_role),
        "grant": grant(people["carol"], ops, people["bob"]).pk,
    }
    url = "/api/v1" + path.format(**ids)
    if persona == "anonymous":
        client = Client()
        expected = 401
    else:
        client = Api(people[persona]).client
        expected = allowed.get(persona, refused)
    body = json.dumps({"totp": totp_code(), "comment": "matrix"})
    response = (
        client.get(url)
        if method == "GET"
        else client.post(url, body, content_type="application/json")
    )
    assert response.status_code == expected, response.content


def request_ids(person, role):
    return request(person, role).pk


# --- The forms' bad-input table, over the API -----------------------------------


def _api_case(data: dict) -> tuple[dict, str]:
    """A REQUEST_CASES row of tests/test_bad_input_forms.py as an API body and
    the field the API names (duration_hours, os_user: the API's names)."""
    ((key, value),) = data.items()
    if key == "duration":
        converted = {"permanent": None, "": ""}.get(value, None)
        if value not in ("permanent", ""):
            converted = float(value) if "." in value else int(value)
        return {"duration_hours": converted}, "duration_hours"
    if key == "role":
        return {"os_user": value}, "os_user"
    return {key: value}, key


def _form_request_cases():
    from tests.test_bad_input_forms import REQUEST_CASES

    return [data for data, _, _ in REQUEST_CASES]


@pytest.mark.parametrize("data", _form_request_cases())
def test_api_refuses_the_forms_bad_request_input(
    carol, deploy_role, other_project, alice, data
):
    from accounts_app.services import roles

    roles.role_create(actor=alice.user, project=other_project, os_user="analyst")
    body, field = _api_case(data)
    api = Api(carol)
    before = AuditEvent.objects.count()
    response = _problem(_create(api, deploy_role, **body), 400)
    assert response["errors"].get(field), response
    assert not AccessRequest.objects.exists()
    assert AuditEvent.objects.count() == before


# --- Several AWS accounts (issue 22) --------------------------------------------


@pytest.fixture
def checkout(hub):  # noqa: F811 (the fixture imported above)
    """checkout has a deploy role in staging and one in prod (as the demo);
    bob approves it; carol and dave are people of the identity account."""
    from accounts_app.services import projects, roles
    from tests.test_accounts import person

    people_account, staging, prod = hub
    bob, carol = person(people_account, "bob"), person(people_account, "carol")
    give_totp(bob.user)
    project = projects.project_create(
        actor=None, name="checkout", account=staging, approvers=[bob.user]
    )
    staging_role = roles.role_create(actor=None, project=project, os_user="deploy")
    prod_role = roles.role_create(
        actor=None, project=project, os_user="deploy", account=prod
    )
    return {
        "bob": bob,
        "carol": carol,
        "staging": staging_role,
        "prod": prod_role,
        "project": project,
    }


def test_grants_in_workload_accounts_use_the_identity_device_and_the_roles_account(
    checkout,
):
    from provisioning import aws
    from tests.helpers import run_instance

    carol, bob = checkout["carol"], checkout["bob"]
    prod = checkout["prod"].account
    prod.regions = ["eu-central-1"]
    prod.save(update_fields=["regions"])
    for role in (checkout["staging"], checkout["prod"]):
        run_instance(
            aws.client("ec2", role.account), "checkout", f"co-{role.account.name}"
        )
        grant(carol, role, bob)
    items = {g["account"]: g for g in Api(carol).get("/grants").json()}
    assert sorted(items) == ["prod", "staging"]
    for name, account_id, region in (
        ("staging", "111111111111", "eu-west-1"),  # its first region
        ("prod", "222222222222", "eu-central-1"),
    ):
        item = items[name]
        role = checkout[name]
        profile = f"opsgate-{role.role_name}-{account_id}"
        mfa = "arn:aws:iam::123456789012:mfa/carol"
        assert {k: item[k] for k in ("account_id", "profile_name", "region")} == {
            "account_id": account_id,
            "profile_name": profile,
            "region": region,
        }
        assert item["mfa_serial"] == mfa
        assert item["role_arn"] == (
            f"arn:aws:iam::{account_id}:role/opsgate/{role.role_name}"
        )
        # The page's own text says the same: one source for both.
        assert f"[profile {profile}]\n" in item["aws_config"]
        assert f"mfa_serial = {mfa}\n" in item["aws_config"]
        assert f"region = {region}" in item["aws_config"]
        assert [i["name"] for i in item["instances"]] == [f"co-{name}"]
        assert item["instances_error"] == ""


def test_a_request_names_its_account_by_name_or_id_and_ambiguity_is_refused(
    checkout,
):
    carol = checkout["carol"]
    api = Api(carol)
    body = {"project": "checkout", "os_user": "deploy", "reason": "r"}
    body["duration_hours"] = 8
    both = _problem(api.post("/requests", body), 400)
    assert both["errors"]["account"] == [
        "checkout as deploy exists in several AWS accounts: choose one by name "
        "or id: prod (222222222222), staging (111111111111)."
    ]
    unknown = _problem(api.post("/requests", {**body, "account": "qa"}), 400)
    assert unknown["errors"]["account"] == [
        "checkout has no role in an AWS account named or numbered “qa” (it has: "
        "prod (222222222222), staging (111111111111))."
    ]
    assert not AccessRequest.objects.exists()
    by_name = api.post("/requests", {**body, "account": "prod"})
    assert by_name.status_code == 201, by_name.content
    assert (by_name.json()["account"], by_name.json()["account_id"]) == (
        "prod",
        "222222222222",
    )
    by_id = api.post("/requests", {**body, "account": "111111111111"})
    assert by_id.status_code == 201, by_id.content
    assert AccessRequest.objects.get(pk=by_id.json()["id"]).role == checkout["staging"]
    assert AccessRequest.objects.get(pk=by_name.json()["id"]).requester == carol


def test_a_request_carries_its_ticket_and_scheduled_start(carol, deploy_role):
    from datetime import timedelta

    from django.utils import timezone

    project = deploy_role.project
    project.ticket_pattern = r"INC-\d+"
    project.save(update_fields=["ticket_pattern"])
    api = Api(carol)
    missing = _problem(_create(api, deploy_role), 400)
    assert missing["errors"]["ticket"] == ["payments requires a ticket reference."]
    naive = _problem(
        _create(api, deploy_role, ticket="INC-7", starts_at="2030-01-01T02:00:00"),
        400,
    )
    assert naive["errors"]["starts_at"] == ["Give the start with its time zone."]
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = _create(api, deploy_role, ticket="INC-7", starts_at=start.isoformat())
    assert response.status_code == 201, response.content
    req = AccessRequest.objects.get()
    assert (req.ticket, req.starts_at) == ("INC-7", start)
    body = response.json()
    assert body["ticket"] == "INC-7" and body["starts_at"].startswith(
        start.strftime("%Y-%m-%dT%H:%M:%S")
    )
    event = AuditEvent.objects.get(action="request.create")
    assert event.after["ticket"] == "INC-7"


def test_break_glass_over_the_api_goes_through_the_service(
    carol, dave, deploy_role, provisioning_runs
):
    project = deploy_role.project
    project.allow_break_glass = True
    project.save(update_fields=["allow_break_glass"])
    project.break_glass_people.add(carol.user)
    glass = {"break_glass": True, "duration_hours": None, "reason": "site down"}
    extra = _problem(_create(Api(carol), deploy_role, **glass, ticket="x"), 400)
    assert set(extra["errors"]) == {"ticket"}
    refused = _problem(_create(Api(dave), deploy_role, **glass), 403)
    assert "not marked for break-glass" in refused["detail"]
    response = _create(Api(carol), deploy_role, **glass)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["break_glass"], body["status"]) == (True, "approved")
    assert body["duration_hours"] == project.break_glass_hours
    assert AuditEvent.objects.filter(action="request.break_glass").count() == 1


def test_a_roles_own_approver_sees_and_decides_its_requests(carol, dave, deploy_role):
    deploy_role.approvers.add(dave.user)
    give_totp(dave.user)
    req = request(carol, deploy_role)
    api = Api(dave)
    listed = api.get("/approvals")
    assert listed.status_code == 200, listed.content
    assert [r["id"] for r in listed.json()["items"]] == [req.pk]
    ok = api.post(f"/approvals/{req.pk}/approve", {"totp": totp_code()})
    assert ok.status_code == 200, ok.content
    assert AccessRequest.objects.get().status == RequestStatus.APPROVED


def test_a_device_login_gives_a_roles_own_approver_the_approve_scope(dave, deploy_role):
    deploy_role.approvers.add(dave.user)
    device_code, user_code = tokens.device_authorization_start(client_name="laptop")
    tokens.device_authorization_approve(user_code=user_code, user=dave.user)
    status, secret = tokens.device_authorization_poll(device_code)
    assert status == "ok"
    assert sorted(tokens.token_authenticate(secret).scopes) == [
        "approve",
        "read",
        "request",
    ]

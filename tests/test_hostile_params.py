"""Hostile query strings against every GET view (issue 9 item 3): no 5xx.

The views come from the URLconf, so a new one is covered without editing this
file (a new URL argument fails loudly until ARGUMENTS says what it names). Each
is requested as the first persona it answers 200 to (requester, approver,
admin with TOTP, anonymous), and the parameters it reads are recorded while it
answers that probe. Then every parameter it reads, and a few it does not, get
every value of HOSTILE_VALUES, one parameter at a time; the extras go
together. A hypothesis test then sends generated query strings to opsgate's
own views."""

import urllib.parse

import pytest
from django.apps import apps
from django.core.handlers.wsgi import WSGIRequest, get_bytes_from_wsgi
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts_app.models import AccessRequest
from accounts_app.services import access_requests, roles
from accounts_app.services import projects as project_services
from provisioning.models import Drift, DriftKind
from tests.conftest import give_totp

pytestmark = pytest.mark.django_db

REPEATED = object()  # marker: the parameter appears twice

HOSTILE_VALUES = [
    "9999-12-31",  # the last date: the day after overflows
    "0000-01-01",
    "0001-01-01",
    "2024-02-30",
    "²",  # '²'.isdigit() is true, int('²') fails
    "٣",  # Arabic-Indic three: int() accepts it
    "௫",  # Tamil five
    "1,²,٣,-4",
    "\x00",
    "1\x00",
    "x" * 10_000,
    "9" * 10_000,  # past int()'s 4,300-digit limit
    str(10**30),  # past a bigint
    str(-(10**30)),
    "-1",
    "0",
    "",
    " ",
    "1e309",
    "NaN",
    "1.5",
    "%ff",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "'; SELECT 1; --",
    ["1", "2"],  # the parameter repeated
    ["²", "\x00"],
]
# Django's and allauth's views get fewer: they are not opsgate's code, and
# these are the values that found 500s in opsgate's.
SHORT_VALUES = ["9999-12-31", "²", "9" * 10_000, str(10**30), "", ["1", "²"]]
# Parameters every view gets besides the ones it reads: common names that a
# view might start reading one day, and one nobody reads.
EXTRA_PARAMS = ["page", "q", "next", "id", "format", "o", "p", "zzz"]
# Bytes that are not UTF-8, sent as they are (Django replaces them).
RAW_QUERIES = ["page=%ff%fe", "q=%c0%80", "%00=1", "ids=%e2%82"]

# What the URL arguments name, by pattern name (admin patterns are derived).
ARGUMENTS = {
    "person_detail": lambda w: {"pk": w["carol"].pk},
    "project_detail": lambda w: {"pk": w["role"].project_id},
    "person_retry": lambda w: {"pk": w["carol"].pk},
    "person_console_password": lambda w: {"pk": w["carol"].pk},
    "role_retry": lambda w: {"pk": w["role"].pk},
    "account_retry": lambda w: {"pk": w["role"].account_id},
    "aws_account_check": lambda w: {"pk": w["role"].account_id},
    "aws_account_edit": lambda w: {"pk": w["role"].account_id},
    "request_cancel": lambda w: {"pk": w["pending"].pk},
    "request_done": lambda w: {"pk": w["grant"].pk},
    "request_check": lambda w: {"pk": w["grant"].pk},
    "decide": lambda w: {"pk": w["pending"].pk},
    "approver_revoke": lambda w: {"pk": w["grant"].pk},
    # The API (issue 12) and the token page.
    "request_get": lambda w: {"pk": w["pending"].pk},
    "request_status": lambda w: {"pk": w["pending"].pk},
    "approve": lambda w: {"pk": w["pending"].pk},
    "reject": lambda w: {"pk": w["pending"].pk},
    "grant_end": lambda w: {"pk": w["grant"].pk},
    "token_revoke": lambda w: {"pk": 1},
    "person_invite": lambda w: {"pk": w["carol"].pk},
    "person_offboard": lambda w: {"pk": w["carol"].pk},
    "project_edit": lambda w: {"pk": w["role"].project_id},
    "role_edit": lambda w: {"pk": w["role"].pk},
    # Issue 13 (approval rules); break-glass reviews: none in this world.
    "project_settings": lambda w: {"pk": w["role"].project_id},
    "project_rules": lambda w: {"pk": w["role"].project_id},
    "project_break_glass": lambda w: {"pk": w["role"].project_id},
    "project_webhooks": lambda w: {"pk": w["role"].project_id},
    "role_rules": lambda w: {"pk": w["role"].pk},
    "break_glass_review": lambda w: {"pk": 1},
    "review_detail": lambda w: {"pk": 1},
    "review_item_decide": lambda w: {"pk": 1},
}
GENERIC_ARGUMENTS = {
    "key": "nonsense-key",
    "uidb36": "zz",
    "provider_id": "sso",
    "content_type_id": "1",
    "url": "no-such-page/",
    "app_label": "provisioning",
}


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(filter(None, [namespace, p.namespace]))
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = ":".join(filter(None, [namespace, p.name or ""]))
            yield name or "?", prefix + str(p.pattern)


def url_patterns() -> list[tuple[str, str]]:
    """(name, route) of every URL pattern, with an id per pattern."""
    return list(_walk(get_resolver().url_patterns))


def _fill(route: str, values: dict) -> str:
    """A concrete path for a route (path() or re_path() syntax)."""
    import re

    path = route.replace("^", "").replace("$", "")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), path)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return "/" + path


def concrete_url(name: str, route: str, world: dict) -> str:
    import re

    names = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
    wanted = {a or b for a, b in names}
    values = dict(GENERIC_ARGUMENTS)
    bare = name.split(":")[-1]
    if bare in ARGUMENTS:
        values.update(ARGUMENTS[bare](world))
    admin_model = re.fullmatch(r"admin/(\w+)/(\w+)/<path:object_id>/.*", route)
    if admin_model:
        model = apps.get_model(admin_model.group(1), admin_model.group(2))
        obj = model.objects.order_by("pk").first()
        values["object_id"] = obj.pk if obj else 1
    values.setdefault("object_id", "1")
    values.setdefault("id", world["alice"].user.pk)
    missing = wanted - set(values)
    assert not missing, (
        f"{name} ({route}) takes {missing}: say in ARGUMENTS which object it names"
    )
    url = _fill(route, values)
    resolve(url)  # the filled-in path reaches that pattern's view
    return url


# --- Recording which parameters a view reads ----------------------------------

READS: set[str] = set()


class RecordingQueryDict(QueryDict):
    def __getitem__(self, key):
        READS.add(key)
        return super().__getitem__(key)

    def getlist(self, key, default=None):
        READS.add(key)
        return super().getlist(key, default)

    def __contains__(self, key):
        READS.add(key)
        return super().__contains__(key)


class _RecordingGet:
    def __get__(self, request, owner=None):
        if request is None:
            return self
        raw = get_bytes_from_wsgi(request.environ, "QUERY_STRING", "")
        request.__dict__["GET"] = RecordingQueryDict(raw, encoding=request._encoding)
        return request.__dict__["GET"]


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setattr(WSGIRequest, "GET", _RecordingGet())
    READS.clear()
    return READS


# --- The world and the personas -----------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, moto_server):
    """Built once for the module inside a transaction rolled back at its end
    (each test then runs in a savepoint): 170 tests, one setup."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


def _build_world() -> dict:
    from accounts_app.models import AwsAccount
    from tests.conftest import ACCOUNT_ID, _person

    account = AwsAccount.objects.create(
        account_id=ACCOUNT_ID, name="default", is_default=True
    )
    alice, bob, carol, dave = (
        _person(account, name, staff=name == "alice")
        for name in ("alice", "bob", "carol", "dave")
    )
    payments = project_services.project_create(
        actor=alice.user, name="payments", account=account, approvers=[bob.user]
    )
    role = roles.role_create(actor=alice.user, project=payments, os_user="deploy")
    grant = access_requests.access_request_create(
        requester=carol, role=role, reason="r", duration_hours=8, actor=carol.user
    )
    access_requests.access_request_approve(access_request=grant, approver=bob.user)
    pending = access_requests.access_request_create(
        requester=dave, role=role, reason="r", duration_hours=8, actor=dave.user
    )
    now = timezone.now()
    Drift.objects.create(
        account=account,
        object_type="role",
        name=role.role_name,
        kind=DriftKind.MISSING,
        first_seen=now,
        last_seen=now,
    )
    clients = {"anonymous": Client()}
    for persona, person in (("requester", carol), ("approver", bob), ("admin", alice)):
        if persona != "requester":
            give_totp(person.user)
        clients[persona] = Client()
        clients[persona].force_login(person.user)
    return {
        "alice": alice,
        "carol": carol,
        "role": role,
        "grant": grant,
        "pending": pending,
        "clients": clients,
    }


PERSONAS = ["requester", "approver", "admin", "anonymous"]


def choose_persona(world, url, recording) -> tuple[str, set[str]]:
    """The first persona the view answers 200 to, and what it read then."""
    for persona in PERSONAS:
        recording.clear()
        if world["clients"][persona].get(url, {"_probe": "1"}).status_code == 200:
            return persona, set(recording)
    recording.clear()
    world["clients"]["admin"].get(url, {"_probe": "1"})
    return "admin", set(recording)


def _query(params: dict) -> str:
    return urllib.parse.urlencode(
        [
            (k, item)
            for k, v in params.items()
            for item in (v if isinstance(v, list) else [v])
        ]
    )


TRIED = {"table": 0, "hypothesis": 0}


def _get(client, url, query: str):
    response = client.get(f"{url}?{query}" if query else url)
    assert response.status_code < 500, (url, query[:200], response.status_code)
    return response


# --- The table ----------------------------------------------------------------

PATTERNS = url_patterns()


def ours(url: str) -> bool:
    return resolve(url).func.__module__.split(".")[0] in OWN_APPS


OWN_APPS = {"portal", "accounts_app", "provisioning"}


@pytest.mark.parametrize("name, route", PATTERNS, ids=[f"{n} {r}" for n, r in PATTERNS])
def test_no_query_string_makes_a_view_fail(world, recording, name, route):
    """Each parameter the view reads alone (a bad one must not hide another),
    then the extras together."""
    url = concrete_url(name, route, world)
    persona, reads = choose_persona(world, url, recording)
    client = world["clients"][persona]
    reads.discard("_probe")
    extras = [p for p in EXTRA_PARAMS if p not in reads]
    for value in HOSTILE_VALUES if ours(url) else SHORT_VALUES:
        for param in sorted(reads):
            _get(client, url, _query({param: value}))
        _get(client, url, _query(dict.fromkeys(extras, value)))
        TRIED["table"] += len(reads) + len(extras)
    for raw in RAW_QUERIES:
        _get(client, url, raw)
        TRIED["table"] += 1
    print(f"\n{name}: as {persona}, reads {sorted(reads)}; {TRIED}")


def test_the_probe_sees_what_the_views_read(world, recording):
    """The recording works: the parameters behind the two reported 500s."""
    assert choose_persona(world, "/audit/", recording) == (
        "admin",
        {"_probe", "person", "project", "action", "since", "until", "format", "page"},
    )
    persona, reads = choose_persona(world, "/requests/status.json", recording)
    assert (persona, "ids" in reads) == ("requester", True)


@pytest.mark.parametrize(
    "url, field, message",
    [
        ("/audit/?until=9999-12-31", "until", "Give a date from 1900-01-01 to"),
        ("/audit/?since=0001-01-01", "since", "Give a date from 1900-01-01 to"),
        ("/audit/?since=%D9%A2%D9%A0%D9%A2%D9%A4-01-01", "since", "valid date"),
    ],
)
def test_out_of_range_dates_are_a_form_error(world, url, field, message):
    response = world["clients"]["admin"].get(url)
    assert response.status_code == 200
    assert any(message in e for e in response.context["form"].errors[field])
    assert list(response.context["page"].object_list) == []


def test_status_endpoint_skips_ids_that_are_not_ascii_numbers(world):
    grant = world["grant"]
    client = world["clients"]["requester"]
    AccessRequest.objects.filter(pk=grant.pk).update(status="revoked")
    query = f"ids=%C2%B2,{grant.pk},{10**30},%D9%A3"
    data = client.get(f"/requests/status.json?{query}").json()
    assert list(data["requests"]) == [str(grant.pk)]


def test_a_nul_in_the_people_search_is_a_bad_request(world):
    response = world["clients"]["admin"].get("/people/?q=a%00b")
    assert response.status_code == 400


# --- Generated query strings --------------------------------------------------

OWN_VIEWS = [
    ("requester", "/"),
    ("requester", "/request/"),
    ("requester", "/requests/status.json"),
    ("approver", "/approvals/"),
    ("admin", "/people/"),
    ("admin", "/projects/"),
    ("admin", "/audit/"),
    ("admin", "/drift/"),
    ("admin", "/dashboard/"),
]
NAMES = st.sampled_from(
    ["ids", "page", "q", "person", "project", "action", "since", "until", "format"]
    + ["status", "kind", "account", "next"]
) | st.text(min_size=0, max_size=8)
VALUES = (
    st.text(max_size=40)
    | st.integers(min_value=-(10**40), max_value=10**40).map(str)
    | st.dates().map(str)
    | st.lists(st.integers(min_value=-5, max_value=10**20), max_size=5).map(
        lambda xs: ",".join(map(str, xs))
    )
    | st.sampled_from([v for v in HOSTILE_VALUES if isinstance(v, str)])
)
EXAMPLES_PER_VIEW = 25


@pytest.mark.parametrize("persona, url", OWN_VIEWS)
def test_generated_query_strings_never_make_a_view_fail(world, persona, url):
    client = world["clients"][persona]

    @settings(
        max_examples=EXAMPLES_PER_VIEW,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.lists(st.tuples(NAMES, VALUES), max_size=6))
    def check(pairs):
        _get(client, url, urllib.parse.urlencode(pairs))
        TRIED["hypothesis"] += len(pairs)

    check()
    print(f"\n{url}: {TRIED}")

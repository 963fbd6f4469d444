"""The API at scale (issue 12): p50/p95 of list requests, create and approve,
one client after the other, against gunicorn with the web_latency seed (N
people, 10·N requests); then `opsgate request --wait` from command to active
side by side with the web form path (POST the form, poll the page's status
endpoint every 2 s, as the page does), both approved by a robot approver and
provisioned by a real worker against moto."""

import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection

from accounts_app.models import AccessRequest, IamUser, OperationRole, RequestStatus
from accounts_app.services import access_requests, tokens
from bench import web_latency

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _pct(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
    }


def _token(user, scopes=("read", "request", "approve")) -> str:
    return tokens.token_create(
        owner=user, name="bench", scopes=list(scopes), days=1, actor=user
    )[1]


def _approvers(count: int, projects) -> list:
    """`count` approvers of `projects`, each with TOTP: every approval carries
    a fresh code, usable once per person, so each approver approves once per
    30-second window."""
    from allauth.mfa.totp.internal.auth import TOTP

    User = get_user_model()
    people = []
    for n in range(count):
        user = User.objects.create(username=f"approver{n:03d}")
        TOTP.activate(user, SECRET)
        people.append(user)
    for project in projects:
        project.approvers.add(*people)
    return people


def _code() -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    if 30 - time.time() % 30 < 8:
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(SECRET, int(time.time()) // 30))


def _timed(call) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code < 300, (response.status_code, response.text[:300])
    return elapsed


def measure_calls(base_url: str, people: int, requests: int, calls: int) -> list:
    personas = web_latency.seed(people, requests)
    web_latency.settle()
    requester = personas["requester"]
    # Not the projects of the seed's approver: measure_wait uses those.
    roles = list(
        OperationRole.objects.exclude(requests__requester__user=requester)
        .exclude(project__approvers=personas["approver"])
        .select_related("project")
        .order_by("pk")[: calls * 2]
    )
    api = httpx.Client(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {_token(requester)}"},
        timeout=30,
    )
    api.get("/requests")  # warm up
    listed = [_timed(lambda: api.get("/requests")) for _ in range(calls)]
    filtered = [
        _timed(lambda: api.get("/requests", params={"status": "approved"}))
        for _ in range(calls)
    ]
    created = []
    for role in roles[:calls]:
        body = {
            "project": role.project.name,
            "os_user": role.os_user,
            "reason": "bench",
            "duration_hours": 1,
        }
        created.append(_timed(lambda body=body: api.post("/requests", json=body)))
    # Approvals: requests by other people, each on its own role (an approval
    # waits for the worker's lock on a role it is syncing: that is measured
    # apart), each approved by its own approver (a TOTP code is used once).
    target_roles = roles[:calls]
    approvers = _approvers(calls, list({r.project for r in target_roles}))
    pending = []
    for i, person in enumerate(
        IamUser.objects.exclude(user=requester).order_by("pk")[10:]
    ):
        if len(pending) == calls:
            break
        try:
            pending.append(
                access_requests.access_request_create(
                    requester=person,
                    role=target_roles[i % len(target_roles)],
                    reason="bench",
                    duration_hours=1,
                    actor=person.user,
                )
            )
        except ValidationError:  # the seed left one pending for this role
            continue
    approve = []
    clients = [
        httpx.Client(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {_token(user)}"},
            timeout=30,
        )
        for user in approvers
    ]
    for client, req in zip(clients, pending, strict=True):
        code = _code()  # a new code only when the window is about to turn
        approve.append(
            _timed(
                lambda c=client, r=req, code=code: c.post(
                    f"/approvals/{r.pk}/approve", json={"totp": code}
                )
            )
        )
    return [
        {"call": "GET /requests (mine, page 1)", **_pct(listed)},
        {"call": "GET /requests?status=approved", **_pct(filtered)},
        {"call": "POST /requests", **_pct(created)},
        {"call": "POST /approvals/{id}/approve (with TOTP)", **_pct(approve)},
    ]


class RobotApprover(threading.Thread):
    """Approves the requester's pending requests on `roles` as soon as they
    appear."""

    def __init__(self, approver, requester, roles):
        super().__init__(daemon=True)
        self.approver, self.requester, self.roles = approver, requester, roles
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                for req in AccessRequest.objects.filter(
                    status=RequestStatus.PENDING,
                    requester__user=self.requester,
                    role__in=self.roles,
                ):
                    access_requests.access_request_approve(
                        access_request=req, approver=self.approver
                    )
                time.sleep(0.05)
        finally:
            connection.close()


def measure_wait(base_url: str, runs: int) -> list:
    """Command to active: the CLI's `request --wait` and the web form."""
    from django.test import Client

    User = get_user_model()
    requester = User.objects.get(username="p00002")
    approver = User.objects.get(username="p00001")
    roles = list(
        OperationRole.objects.filter(project__approvers=approver)
        .exclude(requests__requester__user=requester)
        .distinct()
        .select_related("project")[: 2 * runs]
    )
    robot = RobotApprover(approver, requester, roles)
    robot.start()
    token = _token(requester)
    session = Client()
    session.force_login(requester)
    cookie = session.cookies["sessionid"].value
    cli, web = [], []
    try:
        for i in range(runs):
            role = roles[2 * i]
            started = time.perf_counter()
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "opsgate"),
                    "request",
                    role.project.name,
                    "--as",
                    role.os_user,
                    "--reason",
                    "bench",
                    "--hours",
                    "1",
                    "--wait",
                    "--timeout",
                    "120",
                ],
                env={"OPSGATE_URL": base_url, "OPSGATE_TOKEN": token, "HOME": "/tmp"},
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - started) * 1000)
            web.append(_web_form(base_url, cookie, roles[2 * i + 1]))
    finally:
        robot.stop.set()
        robot.join()
    return [
        {"path": "opsgate request --wait", **_pct(cli)},
        {"path": "web form + status page polling (2 s)", **_pct(web)},
    ]


def _web_form(base_url: str, cookie: str, role) -> float:
    client = httpx.Client(base_url=base_url, cookies={"sessionid": cookie}, timeout=30)
    started = time.perf_counter()
    url = f"/request/?project={role.project_id}"
    page = client.get(url).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        url,
        data={
            "csrfmiddlewaretoken": token,
            "role": role.pk,
            "reason": "bench",
            "duration": "1",
        },
        headers={"Referer": base_url + url},
    )
    assert response.status_code == 302, response.text[:500]
    pk = AccessRequest.objects.filter(role=role).latest("created_at").pk
    while True:
        data = client.get("/requests/status.json").json()["requests"]
        if data.get(str(pk), {}).get("key") == "active":
            return (time.perf_counter() - started) * 1000
        time.sleep(2)

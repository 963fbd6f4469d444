"""A person's whole path, from asking to a usable session (issue 24), over
HTTP against gunicorn, with a real Celery worker converging the roles in moto:

1. the person POSTs the request form (their IAM user exists already);
2. an approver POSTs the approve form at once (no human wait: the figure is
   what opsgate adds, not how long an approver takes to look);
3. the worker writes the role's trust: the request is active;
4. the person's status poll (`/requests/status.json`, what *My access* asks
   every 2 s) says "active": asked here as soon as the database says so
   (the page's own 2 s period would add 1 s on average);
5. `sts:AssumeRole` on the role, as the person's AWS profile does first.

Each run uses its own role, so no approval waits for the worker's lock on a
role it is syncing."""

import re
import statistics
import time

import boto3
import requests
from django.test import Client

from accounts_app.models import AccessRequest, AwsAccount, RequestStatus
from accounts_app.services import access_requests, people, projects
from accounts_app.services import roles as role_services
from bench.approval_latency import percentile
from provisioning import sync

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def seed(runs: int):
    """`runs` roles that exist in AWS (one grant each, so the change is a
    trust update), `runs` people already in IAM, and the project's approver
    with TOTP."""
    from allauth.mfa.totp.internal.auth import TOTP

    account = AwsAccount.objects.get(is_default=True)
    admin = people.person_add(actor=None, account=account, iam_user_name="path-admin")
    approver = people.person_add(
        actor=None, account=account, iam_user_name="path-appr", email="a@example.com"
    )
    TOTP.activate(approver.user, SECRET)
    project = projects.project_create(
        actor=admin.user, name="path", account=account, approvers=[approver.user]
    )
    roles = [
        role_services.role_create(actor=admin.user, project=project, os_user=f"p{j}")
        for j in range(runs)
    ]
    sync.account_baseline_sync(account_id=account.pk)
    persons = []
    for i in range(2 * runs):
        person = people.person_add(
            actor=None, account=account, iam_user_name=f"path{i:04d}"
        )
        sync.iam_user_sync(iam_user_id=person.pk)
        person.refresh_from_db()
        persons.append(person)
    for role, holder in zip(roles, persons[runs:], strict=True):
        req = access_requests.access_request_create(
            requester=holder, role=role, reason="seed", duration_hours=8, actor=None
        )
        access_requests.access_request_approve(
            access_request=req, approver=approver.user
        )
        sync.role_sync(role_id=role.pk)
    return project, approver, roles, persons[:runs]


def _session(base_url: str, user) -> tuple[requests.Session, str]:
    client = Client()
    client.force_login(user)
    http = requests.Session()
    http.cookies.set("sessionid", client.cookies["sessionid"].value)
    page = http.get(f"{base_url}/request/", timeout=30)
    page.raise_for_status()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    return http, token.group(1)


def measure(base_url: str, endpoint: str, runs: int, timeout: float = 30) -> dict:
    project, approver, roles, persons = seed(runs)
    approver_http, approver_token = _session(base_url, approver.user)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    parts: dict[str, list[float]] = {
        k: [] for k in ("request", "approve", "active", "seen", "session", "total")
    }
    for role, person in zip(roles, persons, strict=True):
        http, token = _session(base_url, person.user)
        started = time.perf_counter()
        answer = http.post(
            f"{base_url}/request/?project={project.pk}",
            data={
                "role": role.pk,
                "reason": "whole path",
                "duration": "8",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{base_url}/request/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.status_code
        asked = time.perf_counter()
        req = AccessRequest.objects.get(
            requester=person, role=role, status=RequestStatus.PENDING
        )
        answer = approver_http.post(
            f"{base_url}/approvals/{req.pk}/decide",
            data={
                "decision": "approve",
                "comment": "",
                "csrfmiddlewaretoken": approver_token,
            },
            headers={"Referer": f"{base_url}/approvals/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.status_code
        approved = time.perf_counter()
        while not AccessRequest.objects.filter(
            pk=req.pk, provisioned_at__isnull=False
        ).exists():
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"request {req.pk} never became active")
            time.sleep(0.001)
        active = time.perf_counter()
        while True:  # what the person's page asks (once it is active: once)
            poll = http.get(
                f"{base_url}/requests/status.json", params={"ids": req.pk}, timeout=30
            ).json()
            if poll["requests"][str(req.pk)]["key"] == "active":
                break
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"request {req.pk} never shown active")
        seen = time.perf_counter()
        arn = AccessRequest.objects.select_related("role").get(pk=req.pk).role.arn
        sts.assume_role(RoleArn=arn, RoleSessionName=person.name)
        done = time.perf_counter()
        for key, value in (
            ("request", asked - started),
            ("approve", approved - asked),
            ("active", active - approved),
            ("seen", seen - active),
            ("session", done - seen),
            ("total", done - started),
        ):
            parts[key].append(value)
    result = {"runs": runs}
    for key, values in parts.items():
        result[f"{key}_p50_ms"] = round(1000 * statistics.median(values), 1)
    result["total_p95_ms"] = round(1000 * percentile(parts["total"], 0.95), 1)
    return result

"""What the API reads and writes (OpenAPI components)."""

import re
from datetime import date, datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import BeforeValidator

from accounts_app import selectors
from accounts_app.models import AccessRequest
from accounts_app.services import readiness


class RequestIn(Schema):
    project: str = Field(
        ..., min_length=1, max_length=256, description="Project name as typed"
    )
    os_user: str = Field(..., min_length=1, max_length=32, description="--as")
    reason: str = Field(..., max_length=2000)
    duration_hours: int | None = Field(
        ...,
        ge=1,
        le=100000,
        description="null: permanent, where the project allows (and always "
        "null for break-glass: it lasts the project's break-glass hours)",
    )
    account: str | None = Field(
        None,
        max_length=100,
        description="AWS account name or 12-digit id of the role, needed when "
        "the project has this OS user in several accounts",
    )
    ticket: str = Field(
        "",
        max_length=100,
        description="Ticket reference; required (and matched) where the project "
        "asks for one",
    )
    starts_at: datetime | None = Field(
        None,
        description="Scheduled start, with its time zone; null: as soon as approved",
    )
    break_glass: bool = Field(
        False,
        description="Activate at once without approval, where an admin marked "
        "you for the project's break-glass access (no duration, ticket or start)",
    )


class InstanceRowOut(Schema):
    instance_id: str
    name: str
    region: str
    state: str = Field(..., description="ready, offline, not managed, no OS user")
    message: str


class CheckOut(Schema):
    key: str = Field(
        ...,
        description="iam_user, operators_group, mfa, role, trust, role_setup, "
        "instances, simulate (or aws: AWS did not answer)",
    )
    title: str
    ok: bool
    message: str
    fix: str = Field(..., description="What to do when it failed")
    link: str = Field(..., description="An AWS console page to do it, or empty")
    rows: list[InstanceRowOut]


class ReadinessOut(Schema):
    state: str = Field(
        ...,
        description="unknown (not checked, or the grant is not active), checking, "
        "ready, not_ready",
    )
    label: str
    checked_at: datetime | None
    ready_at: datetime | None
    seconds_to_ready: int | None = Field(
        ..., description="From approval (or the scheduled start) to Ready"
    )
    checks: list[CheckOut]
    failed: list[CheckOut]

    @staticmethod
    def of(req: AccessRequest) -> dict:
        data = readiness.summary(req)
        for key in ("checks", "failed"):
            data[key] = [
                {
                    **{k: c.get(k, "") for k in ("key", "title", "message")},
                    "ok": bool(c.get("ok")),
                    "fix": c.get("fix") or "",
                    "link": c.get("link") or "",
                    "rows": c.get("rows") or [],
                }
                for c in data[key]
            ]
        return data


class RequestOut(Schema):
    id: int
    requester: str
    project: str
    project_id: int
    os_user: str
    role_name: str
    account: str
    account_id: str
    reason: str
    duration_hours: int | None
    ticket: str
    starts_at: datetime | None
    break_glass: bool
    status: str
    state: str = Field(
        ...,
        description="What people see: pending, provisioning, "
        "active, error, rejected, cancelled, expired, revoked",
    )
    state_label: str
    state_detail: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str
    expires_at: datetime | None
    readiness: ReadinessOut = Field(
        ...,
        description="Can the person really get in? What AWS holds, read back "
        "after the role converged and on POST /requests/{id}/check",
    )

    @staticmethod
    def of(req: AccessRequest) -> dict:
        display = selectors.request_display(req)
        return {
            "id": req.pk,
            "requester": req.requester.name,
            "project": req.role.project.name,
            "project_id": req.role.project_id,
            "os_user": req.role.os_user,
            "role_name": req.role.role_name,
            "account": req.role.account.name,
            "account_id": req.role.account.account_id,
            "reason": req.reason,
            "duration_hours": req.duration_hours,
            "ticket": req.ticket,
            "starts_at": req.starts_at,
            "break_glass": req.break_glass,
            "status": req.status,
            "state": display.key,
            "state_label": display.label,
            "state_detail": display.detail,
            "created_at": req.created_at,
            "decided_by": req.decided_by.get_username() if req.decided_by else None,
            "decided_at": req.decided_at,
            "decision_comment": req.decision_comment,
            "expires_at": req.expires_at,
            "readiness": ReadinessOut.of(req),
        }


class StatusOut(Schema):
    id: int
    status: str
    state: str
    label: str
    detail: str
    final: bool


class Page(Schema):
    count: int
    page: int
    pages: int


class RequestPage(Page):
    items: list[RequestOut]


class DecisionIn(Schema):
    totp: str = Field(
        ...,
        min_length=1,
        max_length=20,
        description="A current code from the approver's authenticator app",
    )
    comment: str = Field("", max_length=2000)


class RejectIn(DecisionIn):
    comment: str = Field(..., min_length=1, max_length=2000)


class InstanceOut(Schema):
    instance_id: str
    name: str
    state: str


class GrantOut(RequestOut):
    role_arn: str
    profile_name: str
    mfa_serial: str
    source_profile: str
    role_session_name: str
    region: str
    switch_role_url: str
    aws_config: str
    ssm_command: str
    instances: list[InstanceOut]
    instances_error: str


class PersonOut(Schema):
    id: int
    iam_user_name: str
    login: str
    email: str
    name: str
    account: str
    state: str
    is_staff: bool
    sync_status: str


class PersonPage(Page):
    items: list[PersonOut]


class RoleOut(Schema):
    id: int
    project: str
    project_id: int
    os_user: str
    role_name: str
    account: str
    arn: str
    sync_status: str
    last_error: str


class ProjectOut(Schema):
    id: int
    name: str
    account: str
    description: str
    approvers: list[str]
    durations: list[int]
    allow_permanent: bool
    create_os_users: bool
    roles: list[RoleOut]


class AuditOut(Schema):
    id: int
    created_at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    object: str
    project: str | None
    before: dict | list | None
    after: dict | list | None


class AuditPage(Page):
    items: list[AuditOut]


# Query text without a NUL character: the query-string guard refuses one with
# 400 before any view (PostgreSQL cannot compare it), so the schema says so.
NO_NUL = r"^[^\x00]*$"


def _iso_date(value):
    """A day as YYYY-MM-DD only: pydantic's lax parsing read `until=0` as
    1970-01-01, which the schema (format: date) calls invalid."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("Enter a date as YYYY-MM-DD.")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class AuditFilters(Schema):
    person: str = Field("", max_length=200, pattern=NO_NUL)
    project: int | None = Field(None, ge=1, le=2**31 - 1)
    action: str = Field("", max_length=64, pattern=NO_NUL)
    since: IsoDate | None = None
    until: IsoDate | None = None
    page: int = Field(1, ge=1, le=100000)


class DeviceStartIn(Schema):
    client_name: str = Field("", max_length=100)


class DeviceStartOut(Schema):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class DeviceTokenIn(Schema):
    device_code: str = Field(..., min_length=1, max_length=200)


class DeviceTokenOut(Schema):
    status: str = Field(..., description="pending, ok, expired, denied or used")
    token: str | None = None


class MeOut(Schema):
    login: str
    email: str
    is_staff: bool
    approver_of: list[str]
    iam_user_name: str | None
    token_name: str
    token_scopes: list[str]
    token_expires_at: datetime

"""My requests and grants: `opsgate request` (and its --wait), `status`,
`check`, `done`."""

import time
from datetime import datetime
from typing import Annotated

import typer

from opsgate_cli.api import Api
from opsgate_cli.common import (
    BAD_INPUT,
    NOT_READY,
    REFUSED,
    REFUSED_STATES,
    TIMEOUT,
    Failure,
    JsonOpt,
    _json,
    _out,
    _run,
)
from opsgate_cli.readiness import _failed_checks, _ready


def local_time(value: str) -> str:
    """An API time (ISO 8601, UTC) in this machine's zone, with its offset:
    2026-12-07 18:30 +05:30."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    return f"{when:%Y-%m-%d %H:%M} {when.isoformat(timespec='minutes')[-6:]}"


def _line(r: dict) -> str:
    times = ""
    if r.get("starts_at") and r["state"] in ("pending", "scheduled"):
        times += f" from {local_time(r['starts_at'])}"
    if r.get("expires_at"):
        times += f" until {local_time(r['expires_at'])}"
    glass = " (break-glass)" if r.get("break_glass") else ""
    return (
        f"#{r['id']:<6} {r['project']} as {r['os_user']} in {r['account']} "
        f"({r['account_id']}): {r['state_label']}{times}{glass}{_ready(r)}"
    )


def _start(value: str | None) -> str | None:
    """--start as ISO 8601 with an offset; a time without one is this
    machine's local time."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Failure(
            f"--start: {value!r} is not a date and time. Give e.g. "
            "2026-12-08 02:00 (your local time) or 2026-12-08T02:00+01:00.",
            BAD_INPUT,
        ) from None
    return when.astimezone().isoformat()


def request_(
    project: Annotated[str, typer.Argument(help="Project name.")],
    os_user: Annotated[str, typer.Option("--as", help="OS user to run as.")],
    reason: Annotated[str, typer.Option(help="Why; approvers see it.")],
    hours: Annotated[
        int | None,
        typer.Option(
            help="How many hours, one the project offers. Without it: no time "
            "limit, where the project allows that."
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            help="The AWS account (name or 12-digit id), needed when the project "
            "has this OS user in several accounts."
        ),
    ] = None,
    ticket: Annotated[
        str, typer.Option(help="Ticket reference, for projects that need one.")
    ] = "",
    start: Annotated[
        str | None,
        typer.Option(
            help="Start later, e.g. 2026-12-08 02:00 (your local time) or with "
            "an offset. Without it: as soon as approved."
        ),
    ] = None,
    break_glass: Annotated[
        bool,
        typer.Option(
            "--break-glass",
            help="Emergency: active at once without approval, if an admin marked "
            "you for it. Every approver is told; --reason says what broke.",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait until active or refused.")] = False,
    timeout: Annotated[int, typer.Option(help="Seconds --wait waits.")] = 3600,
    json_: JsonOpt = False,
) -> None:
    """Ask for access to a project as an OS user."""

    def action():
        api = Api()
        body = {
            "project": project,
            "os_user": os_user,
            "reason": reason,
            "duration_hours": hours,
            "account": account,
            "ticket": ticket,
            "starts_at": _start(start),
            "break_glass": break_glass,
        }
        created = api.call("POST", "/requests", json=body)
        if not wait:
            _out(_json(json_), created, f"Requested: {_line(created)}")
            return
        if not _json(json_):
            typer.echo(f"Requested #{created['id']}; waiting…", err=True)
        final = _wait(api, created["id"], timeout, quiet=_json(json_))
        _out(_json(json_), final, _line(final))
        if final["state"] in REFUSED_STATES:
            comment = final.get("decision_comment")
            raise Failure(
                f"Request #{final['id']} {final['state_label'].lower()}"
                + (f": {comment}" if comment else "."),
                REFUSED,
                final,
            )

    _run(json_, action)


POLL_SECONDS = 2.0


def _delays():
    """Seconds between two reads while waiting: the first after 1 s, then
    every 2 s, as often as the My access page polls. (A back-off to 5 s let a
    grant wait up to 5 s to be seen: approvals come after minutes, and a
    status read costs the server about 5 ms.)"""
    yield 1.0
    while True:
        yield POLL_SECONDS


def _wait(api: Api, pk: int, timeout: int, *, quiet: bool) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    delays = _delays()
    while True:
        status = api.call("GET", f"/requests/{pk}/status")
        if status["label"] != last and not quiet:
            detail = f" ({status['detail']})" if status["detail"] else ""
            typer.echo(f"  {status['label']}{detail}", err=True)
            last = status["label"]
        if status["final"]:
            return api.call("GET", f"/requests/{pk}")
        if time.monotonic() > deadline:
            raise Failure(
                f"Still {status['label'].lower()} after {timeout} s.", TIMEOUT
            )
        time.sleep(next(delays))


def status(
    request_id: Annotated[int | None, typer.Argument(help="One request.")] = None,
    json_: JsonOpt = False,
) -> None:
    """My requests and grants, newest first (or one request by its id)."""

    def action():
        api = Api()
        if request_id is not None:
            item = api.call("GET", f"/requests/{request_id}")
            detail = f"\n  {item['state_detail']}" if item["state_detail"] else ""
            failed = _failed_checks(item)
            _out(
                _json(json_),
                item,
                _line(item) + detail + (f"\n{failed}" if failed else ""),
            )
            return
        items = api.call("GET", "/requests")["items"]
        lines = []
        for r in items:
            failed = _failed_checks(r)
            lines.append(_line(r) + (f"\n{failed}" if failed else ""))
        _out(_json(json_), items, "\n".join(lines) or "No requests yet.")

    _run(json_, action)


def check(
    request_id: Annotated[int, typer.Argument(help="The grant to check.")],
    wait: Annotated[
        bool, typer.Option(help="Wait for the outcome (Ready or Not ready).")
    ] = True,
    timeout: Annotated[int, typer.Option(help="Seconds --wait waits.")] = 300,
    json_: JsonOpt = False,
) -> None:
    """Check again whether one of my grants is ready to use: opsgate reads
    back my IAM user, its MFA device, the role and the instances in AWS."""

    def action():
        api = Api()
        item = api.call("POST", f"/requests/{request_id}/check")
        deadline = time.monotonic() + timeout
        delays = _delays()
        while wait and item["readiness"]["state"] == "checking":
            if time.monotonic() > deadline:
                raise Failure(f"Still checking after {timeout} s.", TIMEOUT)
            time.sleep(next(delays))
            item = api.call("GET", f"/requests/{request_id}")
        failed = _failed_checks(item)
        _out(_json(json_), item, _line(item) + (f"\n{failed}" if failed else ""))
        if item["readiness"]["state"] == "not_ready":
            raise Failure(f"Request #{request_id} is not ready.", NOT_READY, item)

    _run(json_, action)


def done(
    request_id: Annotated[int, typer.Argument(help="The grant to end.")],
    json_: JsonOpt = False,
) -> None:
    """End one of my grants now ("I'm done")."""

    def action():
        item = Api().call("POST", f"/grants/{request_id}/end")
        _out(_json(json_), item, f"Ended: {_line(item)}")

    _run(json_, action)

"""`opsgate`: ask for, approve and use AWS operator access from a terminal.

Exit codes (scripts may rely on them):
  0 done; 1 refused (rejected, cancelled, expired, no grant reaches it);
  2 bad input; 3 no network (server unreachable); 4 not signed in, or the token
  expired or was revoked; 5 forbidden; 6 not found; 7 rate limited;
  8 server error; 9 timed out waiting; 10 a needed program is missing;
  11 the grant is not ready (`opsgate check`).
"""

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from opsgate_cli import awsconfig, config

OK, REFUSED, BAD_INPUT, NO_NETWORK, UNAUTHENTICATED = 0, 1, 2, 3, 4
FORBIDDEN, NOT_FOUND, RATE_LIMITED, SERVER_ERROR, TIMEOUT, MISSING_TOOL = (
    5,
    6,
    7,
    8,
    9,
    10,
)
NOT_READY = 11
EXIT_BY_STATUS = {400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN}
EXIT_BY_STATUS |= {404: NOT_FOUND, 422: BAD_INPUT, 429: RATE_LIMITED}
REFUSED_STATES = {"rejected", "cancelled", "expired", "revoked", "error"}

app = typer.Typer(
    help="opsgate: ask for AWS operator access from the terminal.",
    no_args_is_help=True,
    add_completion=False,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow a plain http:// server that is not this machine (labs only: "
        "the token crosses the network unencrypted).",
    ),
]
STATE = {"json": False, "insecure": False}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class Failure(Exception):
    def __init__(self, message: str, code: int, data: Any = None):
        super().__init__(message)
        self.message, self.code, self.data = message, code, data


@app.callback()
def _main(json_: JsonOpt = False, insecure: InsecureOpt = False) -> None:
    STATE["json"] = json_
    STATE["insecure"] = insecure


def _json(flag: bool) -> bool:
    return flag or STATE["json"]


def _out(as_json: bool, data: Any, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(text)


def _fail(exc: Failure, as_json: bool) -> None:
    if as_json:
        body = {"error": exc.message, "exit_code": exc.code}
        if exc.data is not None:
            body["detail"] = exc.data
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"opsgate: {exc.message}", err=True)
    raise typer.Exit(exc.code)


def _run(as_json: bool, action) -> None:
    try:
        action()
    except Failure as exc:
        _fail(exc, _json(as_json))


# --- HTTP -----------------------------------------------------------------------


def check_url(url: str, *, insecure: bool) -> str:
    """The server URL, refused unless https:// (or http:// to this machine,
    or anywhere with --insecure): the token must not cross a network in
    clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Failure(
            f"Not a server URL: {url!r}. Give https://opsgate.example.", BAD_INPUT
        )
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS and not insecure:
        raise Failure(
            f"Refusing {url}: over http:// your token would cross the network "
            "unencrypted. Use https://, or --insecure in a lab.",
            BAD_INPUT,
        )
    return url.rstrip("/")


class Api:
    def __init__(self, url: str | None = None, token: str | None = None):
        saved = config.load()
        url = url or saved.get("url") or ""
        self.token = token if token is not None else saved.get("token")
        if not url:
            raise Failure(
                "Not signed in: run `opsgate login --url https://opsgate.example`.",
                UNAUTHENTICATED,
            )
        self.insecure = bool(STATE["insecure"] or saved.get("insecure"))
        self.url = check_url(url, insecure=self.insecure)

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs) -> Any:
        headers = {"User-Agent": "opsgate-cli"}
        if auth:
            if not self.token:
                raise Failure("Not signed in: run `opsgate login`.", UNAUTHENTICATED)
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                headers=headers,
                timeout=30,
                **kwargs,
            )
        except httpx.TransportError as exc:
            raise Failure(
                f"Cannot reach {self.url} ({type(exc).__name__}): check the "
                "network, the VPN and the URL.",
                NO_NETWORK,
            ) from None
        if response.status_code < 400:
            return response.json() if response.content else None
        return self._error(response)

    def _error(self, response: httpx.Response):
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        status = response.status_code
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        if status == 401:
            detail = (
                "Your token is expired, revoked or unknown: run `opsgate login` again."
            )
        fields = problem.get("errors") or {}
        lines = [
            f"  {field}: {' '.join(messages)}"
            for field, messages in fields.items()
            if field != "__all__"
        ]
        message = "\n".join([detail, *lines]) if lines and status == 400 else detail
        code = EXIT_BY_STATUS.get(status, SERVER_ERROR if status >= 500 else REFUSED)
        raise Failure(message, code, problem)


# --- Login ----------------------------------------------------------------------


@app.command()
def login(
    url: Annotated[str, typer.Option(help="The opsgate portal, e.g. https://…")],
    timeout: Annotated[int, typer.Option(help="Seconds to wait.")] = 600,
    json_: JsonOpt = False,
) -> None:
    """Sign in: confirm a code in your signed-in browser; the CLI gets a token."""

    def action():
        api = Api(url=url, token="")
        start = api.call(
            "POST",
            "/device/start",
            auth=False,
            json={"client_name": platform.node()[:100]},
        )
        typer.echo(
            f"Open {start['verification_uri_complete']}\n"
            f"and check it shows the code {start['user_code']}.",
            err=True,
        )
        deadline = time.monotonic() + min(timeout, start["expires_in"])
        while time.monotonic() < deadline:
            result = api.call(
                "POST",
                "/device/token",
                auth=False,
                json={"device_code": start["device_code"]},
            )
            if result["status"] == "ok":
                saved = {"url": api.url, "token": result["token"]}
                if api.url.startswith("http://") and STATE["insecure"]:
                    saved["insecure"] = True  # chosen at login, kept for later
                path = config.save(saved)
                me = Api(url=api.url, token=result["token"]).call("GET", "/me")
                _out(
                    _json(json_),
                    {"login": me["login"], "config": str(path)},
                    f"Signed in to {api.url} as {me['login']} (token saved in {path}).",
                )
                return
            if result["status"] != "pending":
                raise Failure(f"Login {result['status']}: run it again.", REFUSED)
            time.sleep(start["interval"])
        raise Failure("Nobody confirmed the code in time.", TIMEOUT)

    _run(json_, action)


@app.command()
def logout(json_: JsonOpt = False) -> None:
    """Revoke this CLI's token and forget it."""

    def action():
        revoked = False
        saved = config.load()
        if saved.get("token") and saved.get("url"):
            try:
                Api().call("POST", "/me/logout")
                revoked = True
            except Failure as exc:
                if exc.code not in (UNAUTHENTICATED, NO_NETWORK):
                    raise
        config.forget()
        _out(
            _json(json_),
            {"revoked": revoked},
            "Signed out." + ("" if revoked else " (The token was already dead.)"),
        )

    _run(json_, action)


# --- Requests -------------------------------------------------------------------


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


# --- Readiness (issue 25) ---------------------------------------------------------


def _ready(r: dict) -> str:
    """", Ready (in 42 s)" / ", Not ready" / ", checking readiness" for an
    active grant whose readiness is known."""
    ready = r.get("readiness") or {}
    state = ready.get("state")
    if state == "ready":
        took = ready.get("seconds_to_ready")
        return ", Ready" + (f" ({took} s after approval)" if took is not None else "")
    if state == "not_ready":
        return ", Not ready"
    if state == "checking":
        return ", checking readiness"
    return ""


def _failed_checks(r: dict) -> str:
    """Each failed check with what to do, indented under the request's line."""
    lines = []
    for check in (r.get("readiness") or {}).get("failed", []):
        lines.append(f"  ✗ {check['title']}: {check['message']}")
        if check.get("fix"):
            lines.append(f"    What to do: {check['fix']}")
        if check.get("link"):
            lines.append(f"    {check['link']}")
        for row in check.get("rows", []):
            if row["state"] != "ready":
                lines.append(
                    f"    {row['instance_id']} ({row['region']}): {row['state']}. "
                    f"{row['message']}"
                )
    return "\n".join(lines)


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


@app.command("request")
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


def _wait(api: Api, pk: int, timeout: int, *, quiet: bool) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    delay = 1.0
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
        time.sleep(delay)
        delay = min(delay * 1.5, 5)


@app.command()
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


@app.command()
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
        delay = 1.0
        while wait and item["readiness"]["state"] == "checking":
            if time.monotonic() > deadline:
                raise Failure(f"Still checking after {timeout} s.", TIMEOUT)
            time.sleep(delay)
            delay = min(delay * 1.5, 5)
            item = api.call("GET", f"/requests/{request_id}")
        failed = _failed_checks(item)
        _out(_json(json_), item, _line(item) + (f"\n{failed}" if failed else ""))
        if item["readiness"]["state"] == "not_ready":
            raise Failure(f"Request #{request_id} is not ready.", NOT_READY, item)

    _run(json_, action)


@app.command()
def done(
    request_id: Annotated[int, typer.Argument(help="The grant to end.")],
    json_: JsonOpt = False,
) -> None:
    """End one of my grants now ("I'm done")."""

    def action():
        item = Api().call("POST", f"/grants/{request_id}/end")
        _out(_json(json_), item, f"Ended: {_line(item)}")

    _run(json_, action)


# --- Approvals ------------------------------------------------------------------


@app.command()
def approvals(json_: JsonOpt = False) -> None:
    """Requests waiting for my decision."""

    def action():
        items = Api().call("GET", "/approvals")["items"]
        text = "\n".join(
            f"#{r['id']:<6} {r['requester']} wants {r['project']} as {r['os_user']} "
            f"in {r['account']} ({r['account_id']}) "
            f"for {r['duration_hours'] or 'no limit'} h: {r['reason']}"
            for r in items
        )
        _out(_json(json_), items, text or "Nothing waits for you.")

    _run(json_, action)


TotpOpt = Annotated[
    str,
    typer.Option(
        "--totp", prompt="Code from your authenticator app", help="Current TOTP code."
    ),
]


@app.command()
def approve(
    request_id: int,
    totp: TotpOpt,
    comment: Annotated[str, typer.Option(help="Optional note.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Approve a request (needs a fresh code from your authenticator app)."""

    def action():
        body = {"totp": totp, "comment": comment}
        item = Api().call("POST", f"/approvals/{request_id}/approve", json=body)
        _out(_json(json_), item, f"Approved #{item['id']} ({item['requester']}).")

    _run(json_, action)


@app.command()
def reject(
    request_id: int,
    comment: Annotated[str, typer.Option(help="Why; the requester sees it.")],
    totp: TotpOpt,
    json_: JsonOpt = False,
) -> None:
    """Reject a request with a comment."""

    def action():
        body = {"totp": totp, "comment": comment}
        item = Api().call("POST", f"/approvals/{request_id}/reject", json=body)
        _out(_json(json_), item, f"Rejected #{item['id']} ({item['requester']}).")

    _run(json_, action)


# --- Using a grant -----------------------------------------------------------------


def _sections(grants: list[dict]) -> dict[str, dict[str, str]]:
    """One profile per grant, named and filled as the server says (the My
    access page shows the same)."""
    return {
        f"profile {g['profile_name']}": {
            "role_arn": g["role_arn"],
            "mfa_serial": g["mfa_serial"],
            "source_profile": g["source_profile"],
            "role_session_name": g["role_session_name"],
            "region": g["region"],
        }
        for g in grants
    }


def _write(grants: list[dict]):
    region = grants[0]["region"] if grants else "us-east-1"
    try:
        return awsconfig.write_profiles(_sections(grants), source={"region": region})
    except awsconfig.UnsafeValue as exc:
        raise Failure(
            f"Not writing {awsconfig.config_path()}: {exc}. Nothing was changed.",
            REFUSED,
        ) from None


@app.command()
def profile(json_: JsonOpt = False) -> None:
    """Write one ~/.aws/config profile per active grant (other sections stay)."""

    def action():
        grants = [g for g in Api().call("GET", "/grants") if g["state"] == "active"]
        path = _write(grants)
        names = [n.removeprefix("profile ") for n in _sections(grants)]
        text = (
            f"Wrote {len(names)} profile(s) in {path}: " + ", ".join(names)
            if names
            else "No active grant: nothing written."
        )
        if names:
            text += (
                "\nThe source profile `opsgate` holds your own access keys: "
                "aws configure --profile opsgate"
            )
        _out(_json(json_), {"config": str(path), "profiles": names}, text)

    _run(json_, action)


@app.command()
def ssh(
    target: Annotated[str, typer.Argument(help="Instance id or Name tag.")],
    dry_run: Annotated[bool, typer.Option(help="Print the command only.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Open a Session Manager shell on an instance one of my grants reaches."""

    def action():
        grants = [g for g in Api().call("GET", "/grants") if g["state"] == "active"]
        found = [
            (g, i)
            for g in grants
            for i in g["instances"]
            if target in (i["instance_id"], i["name"])
        ]
        if not found:
            reach = sorted({i["instance_id"] for g in grants for i in g["instances"]})
            raise Failure(
                f"No active grant reaches {target}."
                + (f" Yours reach: {', '.join(reach)}." if reach else ""),
                REFUSED,
            )
        if len({i["instance_id"] for _, i in found}) > 1:
            choices = ", ".join(
                f"{i['instance_id']} ({i['state']}, {g['account']})" for g, i in found
            )
            raise Failure(
                f"Several instances are named {target}: give the id: {choices}.",
                BAD_INPUT,
            )
        found.sort(key=lambda gi: gi[1]["state"] != "running")
        grant, instance = found[0]
        _write([grant])
        name = grant["profile_name"]
        command = [
            "aws",
            "ssm",
            "start-session",
            "--target",
            instance["instance_id"],
            "--profile",
            name,
            "--region",
            grant["region"],
        ]
        if dry_run:
            _out(_json(json_), {"command": command}, shlex.join(command))
            return
        for tool in ("aws", "session-manager-plugin"):
            if shutil.which(tool) is None:
                raise Failure(
                    f"{tool} is not installed: see https://docs.aws.amazon.com/"
                    "systems-manager/latest/userguide/"
                    "session-manager-working-with-install-plugin.html",
                    MISSING_TOOL,
                )
        typer.echo(shlex.join(command), err=True)
        sys.stdout.flush()
        raise typer.Exit(subprocess.call(command, env=os.environ.copy()))

    _run(json_, action)


if __name__ == "__main__":
    app()

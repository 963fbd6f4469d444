"""`opsgate login` (the device flow: a code confirmed in a signed-in
browser) and `opsgate logout`."""

import platform
import time
from typing import Annotated

import typer

from opsgate_cli import config
from opsgate_cli.api import Api
from opsgate_cli.common import (
    NO_NETWORK,
    REFUSED,
    STATE,
    TIMEOUT,
    UNAUTHENTICATED,
    Failure,
    JsonOpt,
    _json,
    _out,
    _run,
)


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

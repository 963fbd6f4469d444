"""What every command of the CLI shares: the exit codes (listed in
opsgate_cli.main), the global options' state, output as text or JSON, and
the Failure that ends a command with its code."""

import json
from typing import Annotated, Any

import typer

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

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
STATE = {"json": False, "insecure": False}


class Failure(Exception):
    def __init__(self, message: str, code: int, data: Any = None):
        super().__init__(message)
        self.message, self.code, self.data = message, code, data


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

"""An approver's commands: `opsgate approvals`, `approve`, `reject`."""

from typing import Annotated

import typer

from opsgate_cli.api import Api
from opsgate_cli.common import JsonOpt, _json, _out, _run


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

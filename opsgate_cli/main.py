"""`opsgate`: ask for, approve and use AWS operator access from a terminal.

Exit codes (scripts may rely on them):
  0 done; 1 refused (rejected, cancelled, expired, no grant reaches it);
  2 bad input; 3 no network (server unreachable); 4 not signed in, or the token
  expired or was revoked; 5 forbidden; 6 not found; 7 rate limited;
  8 server error; 9 timed out waiting; 10 a needed program is missing;
  11 the grant is not ready (`opsgate check`).
"""

from typing import Annotated

import typer

from opsgate_cli.commands import approvals, grants, login, requests
from opsgate_cli.common import STATE, JsonOpt

app = typer.Typer(
    help="opsgate: ask for AWS operator access from the terminal.",
    no_args_is_help=True,
    add_completion=False,
)
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow a plain http:// server that is not this machine (labs only: "
        "the token crosses the network unencrypted).",
    ),
]


@app.callback()
def _main(json_: JsonOpt = False, insecure: InsecureOpt = False) -> None:
    STATE["json"] = json_
    STATE["insecure"] = insecure


# The commands, in the order `opsgate --help` lists them.
app.command()(login.login)
app.command()(login.logout)
app.command("request")(requests.request_)
app.command()(requests.status)
app.command()(requests.check)
app.command()(requests.done)
app.command()(approvals.approvals)
app.command()(approvals.approve)
app.command()(approvals.reject)
app.command()(grants.profile)
app.command()(grants.ssh)


if __name__ == "__main__":
    app()

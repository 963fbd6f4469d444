"""Using a grant: `opsgate profile` (~/.aws/config profiles) and `opsgate
ssh` (a Session Manager shell)."""

import os
import shlex
import shutil
import subprocess
import sys
from typing import Annotated

import typer

from opsgate_cli import awsconfig
from opsgate_cli.api import Api
from opsgate_cli.common import (
    BAD_INPUT,
    MISSING_TOOL,
    REFUSED,
    Failure,
    JsonOpt,
    _json,
    _out,
    _run,
)


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

"""Pages of the embedded demo only (settings.DEMO): the e-mails opsgate sent,
read from the file e-mail backend's folder. Anywhere else they answer 404."""

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

SEPARATOR = b"\n" + b"-" * 79 + b"\n"
SHOWN = 50  # the newest mails


@dataclass(frozen=True)
class Mail:
    sent_at: datetime
    to: str
    subject: str
    body: str


def sign_in_help() -> dict:
    from provisioning.management.commands.demo_login_help import demo_totp_command
    from provisioning.management.commands.demo_seed import (
        DEMO_TOTP_USERS,
        PASSWORD,
        PEOPLE,
        TRY,
    )

    return {
        "password": PASSWORD,
        "people": [
            {
                "email": mail,
                "what": TRY[name],
                "totp": demo_totp_command(mail) if name in DEMO_TOTP_USERS else "",
            }
            for name, mail, _staff, _first in PEOPLE
        ],
    }


def read_mails(folder: Path) -> list[Mail]:
    """Newest first: by file (written in time order), then within a file."""
    found = []
    for path in folder.glob("*.log"):
        stat = path.stat()
        sent_at = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        for position, raw in enumerate(path.read_bytes().split(SEPARATOR)):
            if not raw.strip():
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            order = (stat.st_mtime_ns, path.name, position)
            found.append(
                (
                    order,
                    Mail(
                        sent_at=sent_at,
                        to=str(message.get("To", "")),
                        subject=str(message.get("Subject", "")),
                        body=body.get_content() if body else "",
                    ),
                )
            )
    found.sort(key=lambda item: item[0], reverse=True)
    return [m for _order, m in found]


def demo_mail(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO:
        raise Http404("Only in the demo.")
    folder = Path(settings.EMAIL_FILE_PATH)
    mails = read_mails(folder) if folder.is_dir() else []
    return render(request, "demo_mail.html", {"mails": mails[:SHOWN]})

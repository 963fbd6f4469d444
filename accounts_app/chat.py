"""Chat notifications (issue 13): per project, a Slack and a Microsoft Teams
incoming-webhook URL receive new requests, decisions, break-glass uses and
review deadlines. accounts_app only says what to post, once the change has
committed; provisioning's Celery task reads the URL (a secret: never in the
broker message) and posts it, with retries. A webhook that fails never blocks
or undoes the decision."""

import ipaddress
import re
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal

from accounts_app.models import Project

# Sent after commit with project_id, channel ("slack" or "teams") and text.
chat_requested = Signal()

CHANNELS = ("slack", "teams")
_WEBHOOK = re.compile(r"https://[A-Za-z0-9.-]+(?::\d{1,5})?/\S*", re.ASCII)
# A DNS name of letters: `2130706433`, `0x7f000001` or `127.1` are addresses
# in disguise (inet_aton reads them), never names.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)


def host_allowed(host: str, allowed: list[str] | None = None) -> bool:
    """`host` is on the allow-list (`OPSGATE_WEBHOOK_ALLOWED_HOSTS`): equal to
    an entry, or under a `*.domain` entry."""
    host = host.lower().rstrip(".")
    for entry in settings.OPSGATE_WEBHOOK_ALLOWED_HOSTS if allowed is None else allowed:
        entry = entry.lower().strip()
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _is_dns_name(host: str) -> bool:
    labels = host.split(".")
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    return (
        len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
        and not re.fullmatch(r"0x[0-9a-f]+", labels[-1])
    )


def validate_webhook_url(url: str) -> None:
    """https, no credentials, port 443, a DNS name on the allow-list (issue
    21: loopback and metadata addresses were accepted). The worker checks the
    addresses the name resolves to when it sends (provisioning.chat)."""
    if not url:
        return
    if len(url) > 500:
        raise ValidationError("At most 500 characters.")
    if not _WEBHOOK.fullmatch(url):
        raise ValidationError(
            "An https:// incoming-webhook URL with a host name, e.g. "
            "https://hooks.slack.com/services/… (no spaces)."
        )
    if "@" in url.split("/", 3)[2]:
        raise ValidationError("No user name or password in the URL.")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port not in (None, 443):
        raise ValidationError("Webhooks are reached on the https port (443) only.")
    if not _is_dns_name(host):
        raise ValidationError(
            f"{host} is not a host name: give the webhook's name, not an address."
        )
    if not host_allowed(host):
        raise ValidationError(
            f"{host} is not an allowed webhook host (allowed: "
            f"{', '.join(settings.OPSGATE_WEBHOOK_ALLOWED_HOSTS)})."
        )


def webhook_url(project: Project, channel: str) -> str:
    return getattr(project, f"{channel}_webhook_url", "")


def _send(project_id: int, channel: str, text: str) -> None:
    chat_requested.send(sender=None, project_id=project_id, channel=channel, text=text)


def post(project: Project, text: str) -> int:
    """Queue `text` for each webhook the project has, after the current
    transaction commits (at once outside one). Returns how many."""
    queued = 0
    for channel in CHANNELS:
        if webhook_url(project, channel):
            transaction.on_commit(
                partial(_send, project.pk, channel, text), robust=True
            )
            queued += 1
    return queued

"""Chat notifications (issue 13): per project, a Slack and a Microsoft Teams
incoming-webhook URL receive new requests, decisions, break-glass uses and
review deadlines. accounts_app only says what to post, once the change has
committed; provisioning's Celery task reads the URL (a secret: never in the
broker message) and posts it, with retries. A webhook that fails never blocks
or undoes the decision."""

import re
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal

from accounts_app.models import Project

# Sent after commit with project_id, channel ("slack" or "teams") and text.
chat_requested = Signal()

CHANNELS = ("slack", "teams")
_WEBHOOK = re.compile(r"https://[A-Za-z0-9.-]+(?::\d{1,5})?/\S*", re.ASCII)


def validate_webhook_url(url: str) -> None:
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

"""Posting chat notifications to a project's Slack or Teams incoming webhook
(accounts_app.chat says what; this task does the HTTP call, with retries)."""

import json
import logging
import random
import urllib.request

from celery import shared_task

from accounts_app.chat import webhook_url
from accounts_app.models import Project

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_RETRIES = 5


def payload(channel: str, text: str) -> dict:
    # Slack and Teams (incoming webhooks and Workflows) both take {"text"}.
    return {"text": text}


def http_post(url: str, body: dict) -> None:
    """POST JSON; raise on a network error or a non-2xx answer."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - https only (validated)
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def post_chat(self, project_id: int, channel: str, text: str) -> bool:
    project = Project.objects.filter(pk=project_id).first()
    url = webhook_url(project, channel) if project else ""
    if not url:
        return False  # removed since: nothing to do
    try:
        http_post(url, payload(channel, text))
    except Exception as exc:  # any failure: retry later, the decision stands
        if self.request.retries >= MAX_RETRIES:
            log.error(
                "chat %s of project %s failed for good: %s", channel, project_id, exc
            )
            return False
        countdown = random.uniform(1, min(300, 2 ** (self.request.retries + 2)))
        raise self.retry(exc=exc, countdown=countdown) from None
    return True


def on_chat_requested(
    sender, project_id: int, channel: str, text: str, **kwargs
) -> None:
    try:
        post_chat.apply_async(args=[project_id, channel, text])
    except Exception as exc:  # broker down: the decision is committed; log it
        log.warning(
            "could not enqueue chat %s of project %s: %s", channel, project_id, exc
        )

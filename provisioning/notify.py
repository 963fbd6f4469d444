"""Sending notifications in the worker: accounts_app.notifications asks, once
a change has committed, for a notification by name and ids
(`notification_requested`); the receiver publishes `send_notification`, and
the worker renders the mail, sends it and queues the chat posts. The web
request that made the change only publishes one message.

Guarantees: the broker down (publishing raises) → the receiver declines and
accounts_app sends it inline, as before, so nothing is lost. The task runs
`acks_late` like every task here: a worker killed while sending gets the
message again, so a mail may be sent twice (never lost once queued). It never
retries: a mail server that refuses is logged and the mail dropped
(notifications._send), as it was inline; a name outside
notifications.DELIVERABLE is refused.

A publish that failed (a sync's or a notification's) makes this process send
its notifications inline at once for QUIET_SECONDS: a decision with the broker
down waits for the broker's fail-fast timeouts once (its sync's publish), not
once more for its e-mail.
"""

import logging
import time

from celery import shared_task
from django.core.exceptions import ObjectDoesNotExist

from accounts_app import notifications

log = logging.getLogger(__name__)

QUIET_SECONDS = 10.0
# Queued e-mails wait for the syncs queued after them: a worker takes a
# higher priority first (on Redis 0, every other task's, before 9), so the
# sync a person waits on does not queue behind the mails of earlier
# decisions (a worker with one pool process ran them in order).
PRIORITY = 9
_down_until = 0.0  # time.monotonic() until which publishing is not tried


def broker_failed() -> None:
    """A publish of this process failed just now."""
    global _down_until
    _down_until = time.monotonic() + QUIET_SECONDS


@shared_task(acks_late=True)
def send_notification(name: str, args: list) -> int:
    if name not in notifications.DELIVERABLE:
        log.error("refused notification %r: not one opsgate sends", name)
        return 0
    try:
        return notifications.send(name, args)
    except ObjectDoesNotExist:  # deleted since the change: nobody to tell
        log.info("notification %s%s: its object is gone", name, tuple(args))
        return 0


def publish(name: str, args: list) -> bool:
    """Queue the notification; False (it is then sent inline) when the
    broker cannot be reached, or could not a moment ago."""
    if time.monotonic() < _down_until:
        log.warning("broker down a moment ago: sending notification %s now", name)
        return False
    try:
        send_notification.apply_async(args=[name, args], priority=PRIORITY)
        return True
    except Exception as exc:  # broker down: the caller sends it itself
        broker_failed()
        log.warning("could not enqueue notification %s, sending it now: %s", name, exc)
        return False


def on_notification_requested(sender, name: str, args: list, **kwargs) -> bool:
    return publish(name, args)

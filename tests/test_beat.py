"""Celery beat asks for a reconcile a minute after it starts (issue 9 item 7),
instead of leaving a fresh install unchecked for the first hour."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from provisioning import tasks
from tests.workers import ROOT, reset_broker

pytestmark = pytest.mark.worker


def first_message(queue_name: str, timeout: float):
    from portal.celery import app

    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            message = queue.get(block=True, timeout=timeout)
            message.ack()
            return message
        finally:
            queue.close()


def test_beat_asks_for_a_reconcile_a_minute_after_it_starts(tmp_path):
    reset_broker()
    log = open(tmp_path / "beat.log", "w")  # noqa: SIM115
    started = time.time()
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--schedule",
            str(tmp_path / "schedule"),
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        message = first_message("celery", timeout=60)
        received = time.time()
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=20)
        log.close()
    assert message.headers["task"] == "provisioning.tasks.reconcile_accounts"
    eta = datetime.fromisoformat(message.headers["eta"]).timestamp()
    delay = tasks.FIRST_RECONCILE_AFTER_SECONDS
    assert started + delay - 1 <= eta <= received + delay + 1


def test_beat_starts_even_when_the_first_reconcile_cannot_be_sent(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.reconcile_accounts, "apply_async", down)
    tasks.reconcile_soon_after_beat_starts(sender=None)  # logs, does not raise

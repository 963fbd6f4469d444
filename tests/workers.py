"""Real Celery worker processes for tests, sharing the test database and broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    host, port = s["HOST"] or "127.0.0.1", s["PORT"] or 5432
    return f"postgres://{s['USER']}@{host}:{port}/{s['NAME']}"


def wait_for(predicate, timeout=60.0, interval=0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Worker:
    """`celery worker` in its own process group, so SIGKILL takes its pool too."""

    def __init__(
        self,
        name: str,
        concurrency: int = 2,
        env: dict | None = None,
        beat: bool = False,
    ) -> None:
        self.log_path = ROOT / "var" / f"test-worker-{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115
        # With beat: celery beat inside the worker, from a fresh schedule file.
        schedule = self.log_path.with_suffix(".schedule")
        for stale in schedule.parent.glob(f"{schedule.name}*"):
            stale.unlink()
        beat_args = ["--beat", "--schedule", str(schedule)] if beat else []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{name}-{os.getpid()}@%h",
                *beat_args,
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.name = f"{name}-{os.getpid()}"

    def wait_ready(self, timeout: float = 60) -> "Worker":
        from portal.celery import app

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}")
            replies = app.control.ping(timeout=0.5)
            return any(self.name in key for reply in replies for key in reply)

        if not wait_for(ready, timeout=timeout, interval=0.1):
            self.kill()
            raise RuntimeError(f"worker did not start; see {self.log_path}")
        return self

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL the whole worker, pool included: no warm shutdown, no acks."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def reset_broker() -> None:
    """Empty the test broker: queued and unacknowledged messages of earlier
    tests would otherwise reach this test's workers."""
    from django.conf import settings

    from portal.celery import app

    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        import redis

        redis.Redis.from_url(url).flushdb()
    else:
        app.control.purge()


class Web:
    """gunicorn with several worker processes (as deployed) on a free port of
    127.0.0.1, against the test database, serving tests.labelled_wsgi so each
    response names the worker that answered it."""

    def __init__(
        self, workers: int = 3, env: dict | None = None, name: str = "gunicorn"
    ) -> None:
        self.workers = workers
        self.log_path = ROOT / "var" / f"test-{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "tests.labelled_wsgi:application",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                str(workers),
                "--log-level",
                "info",
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.port = 0
        self.pids: set[str] = set()

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> "Web":
        import re
        import urllib.error
        import urllib.request

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            log = self.log()
            port = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log)
            self.pids = set(re.findall(r"Booting worker with pid: (\d+)", log))
            if not port or len(self.pids) < self.workers:
                return False
            self.port = int(port.group(1))
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                return urllib.request.urlopen(url, timeout=5).status == 200
            except urllib.error.HTTPError as exc:
                # 503: serving, with the database or the cache down (the tests
                # that stop Redis on purpose start gunicorn that way).
                return exc.code == 503
            except OSError:
                return False

        if not wait_for(ready, timeout=timeout):
            self.stop()
            raise RuntimeError(f"gunicorn did not start; see {self.log_path}")
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

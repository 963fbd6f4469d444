"""Real Celery worker processes for tests, sharing the test database and broker."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from django.db import connection

from tests.labelled_wsgi import PID_HEADER
from tests.xdist_env import suffix

ROOT = Path(__file__).resolve().parents[1]
LOGIN = "/accounts/login/"


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
    """`celery worker` in its own process group, so SIGKILL takes its pool too.
    Its broker is the tests' (CELERY_BROKER_URL) unless `broker_url` names
    another, e.g. a RedisServer of the test's own."""

    def __init__(
        self,
        name: str,
        concurrency: int = 2,
        env: dict | None = None,
        beat: bool = False,
        broker_url: str = "",
    ) -> None:
        self.broker_url = broker_url
        if broker_url:
            env = {**(env or {}), "CELERY_BROKER_URL": broker_url}
        self.log_path = ROOT / "var" / f"test-worker-{name}{suffix()}.log"
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
        self._control_app = None

    def _control(self):
        """Remote control (ping, inspect) through this worker's broker. Celery
        publishes control messages through the app's own producer pool, so
        another broker needs an app of its own, and read and write URLs: the
        environment's CELERY_BROKER_URL overrides `broker_url`."""
        from celery import Celery

        from portal.celery import app

        if not self.broker_url:
            return app.control
        if self._control_app is None:
            self._control_app = Celery("test-control", set_as_current=False)
            self._control_app.conf.update(
                broker_read_url=self.broker_url,
                broker_write_url=self.broker_url,
                broker_transport_options=app.conf.broker_transport_options,
                broker_connection_timeout=app.conf.broker_connection_timeout,
            )
        return self._control_app.control

    def stats(self) -> dict:
        """`celery inspect stats` of this worker ({} when it does not answer,
        or its broker is down); its "pid" is the main process's."""
        try:
            replies = self._control().inspect(timeout=1).stats() or {}
        except Exception:  # the broker is down or restarting
            return {}
        return next((v for k, v in replies.items() if self.name in k), {})

    def wait_ready(self, timeout: float = 60) -> "Worker":
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}")
            replies = self._control().ping(timeout=0.5)
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
        self._close()

    def _close(self) -> None:
        self._log.close()
        if self._control_app is not None:
            self._control_app.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class RedisServer:
    """A redis-server of the test's own on a free port of 127.0.0.1 (never the
    machine's shared one), without persistence: stop() is a SIGTERM, start()
    brings an empty server back on the same port, as a restarted Redis."""

    def __init__(self, directory: Path) -> None:
        if not shutil.which("redis-server"):
            import pytest

            pytest.skip("redis-server is not installed")
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.RedisError:
                return False

        if not wait_for(answers, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        client.close()
        return self

    def stop(self) -> None:
        """SIGTERM, as `systemctl stop redis` or `docker stop` would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test froze it
            self.proc.terminate()
            self.proc.wait(timeout=10)


APPROVE = """
import os, signal, time
from django.contrib.auth import get_user_model
from accounts_app.models import AccessRequest
from accounts_app.services import access_requests
from provisioning import tasks
if os.environ.get("FREEZE_PID"):
    # A web process that has published before: its connection is open when
    # the broker freezes.
    tasks.sweep.apply_async()
    os.kill(int(os.environ["FREEZE_PID"]), signal.SIGSTOP)
req = AccessRequest.objects.get(pk={pk})
approver = get_user_model().objects.get(username="{approver}")
started = time.monotonic()
access_requests.access_request_approve(access_request=req, approver=approver)
print("ELAPSED", round(time.monotonic() - started, 3))
"""


def approve_in_a_web_process(
    req, broker_url: str, freeze_pid: int = 0, approver: str = "bob"
) -> float:
    """Approve as a separate process whose broker is `broker_url` (frozen
    with SIGSTOP by that process after a first publish, if `freeze_pid`)."""
    code = APPROVE.replace("{pk}", str(req.pk)).replace("{approver}", approver)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "FREEZE_PID": str(freeze_pid or ""),
        },
    )
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split("ELAPSED")[1])


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
        self.log_path = ROOT / "var" / f"test-{name}{suffix()}.log"
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

    def next_port(self) -> int:
        return self.port


@dataclass
class Answer:
    status: int
    location: str
    text: str
    pid: str


class Visitor:
    """A browser without keep-alive: it keeps its cookies and sends every
    request on a new TCP connection, each to the farm's next web process (a
    Web, or several: anything with next_port())."""

    def __init__(self, farm) -> None:
        self.farm = farm
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> Answer:
        # One host name for every process, as behind one load balancer: allauth
        # keys failed sign-ins by the site's domain, which is the Host header.
        headers = {"Connection": "close", "Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        port = self.farm.next_port()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return Answer(
            response.status,
            response.getheader("Location", ""),
            text,
            response.getheader(PID_HEADER, ""),
        )

    def sign_in(self, email: str, password: str) -> Answer:
        self.request("GET", LOGIN)
        return self.request("POST", LOGIN, {"login": email, "password": password})

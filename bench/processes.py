"""What a benchmark run starts (moto, gunicorn, Celery workers), tracked so
that the end of the run, or a signal, stops all of it."""

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# Everything this run starts, oldest first: Popen objects and test Workers
# (which run in their own session, so a terminal's Ctrl-C never reaches them).
_children: list = []


def track(child):
    _children.append(child)
    return child


def stop_children() -> None:
    """Stop what this run started, newest first (workers before moto)."""
    while _children:
        child = _children.pop()
        try:
            _stop(child)
        except Exception as exc:  # keep stopping the others
            print(f"could not stop {child}: {exc}", file=sys.stderr)


def finish(child) -> None:
    """Stop one child now (the end of a section)."""
    if child in _children:
        _children.remove(child)
    _stop(child)


def _stop(child) -> None:
    if not isinstance(child, subprocess.Popen):
        child.stop()  # a Worker: SIGTERM to its process group, then SIGKILL
    elif child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def _on_signal(signum, frame) -> None:
    for other in HANDLED_SIGNALS:  # a second Ctrl-C must not cut the cleanup
        signal.signal(other, signal.SIG_IGN)
    stop_children()
    sys.exit(128 + signum)


HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_signal_handlers() -> None:
    """SIGTERM, SIGINT and SIGHUP stop every child before the run exits (by
    default SIGTERM and SIGHUP end Python without running any cleanup)."""
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, _on_signal)
    atexit.register(stop_children)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # moto_server with IAM user permissions boundaries (provisioning/moto_ext.py).
    proc = spawn(
        [
            sys.executable,
            "-m",
            "provisioning.moto_ext",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
    )
    for _ in range(600):  # a minute: a loaded machine takes more than ten seconds
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    return track(subprocess.Popen(args, **kwargs))


def start_worker(name: str, **kwargs):
    """A Celery worker (tests.workers.Worker), stopped with the run."""
    from tests.workers import Worker

    return track(Worker(name, **kwargs)).wait_ready()


_gunicorn: list[subprocess.Popen] = []


def start_gunicorn(workers: int = 2) -> str:
    port = free_port()
    proc = spawn(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "portal.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    _gunicorn.append(proc)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def stop(url: str) -> None:
    for proc in _gunicorn:
        finish(proc)
    _gunicorn.clear()


def reset_moto(url: str) -> None:
    request = urllib.request.Request(url + "/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).read()

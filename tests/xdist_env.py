"""Loaded first (`-p tests.xdist_env` in pyproject.toml), before Django reads
its settings: under pytest-xdist each worker process gets its own Redis
database for the Celery broker and the cache, and its own var folder, so two
processes never purge each other's queue, clear each other's cache or share a
worker log. pytest-django already gives each its own test database
(test_<name>_gw0, …); each process starts its own moto server and live server.

Worker gwK takes the database number of CELERY_BROKER_URL minus K."""

import os
import re

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _shift(url: str, index: int) -> str:
    """redis://host:port/N… → the same URL on database N - index."""
    match = re.match(r"^(rediss?://[^/?]+)/(\d+)(.*)$", url)
    if not match:
        return url
    base, number, rest = match.groups()
    return f"{base}/{(int(number) - index) % 16}{rest}"


if WORKER.startswith("gw"):
    index = int(WORKER[2:])
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):
        if name in os.environ:
            os.environ[name] = _shift(os.environ[name], index)
    if "OPSGATE_VAR_DIR" in os.environ:
        os.environ["OPSGATE_VAR_DIR"] = os.path.join(
            os.environ["OPSGATE_VAR_DIR"], WORKER
        )
        os.makedirs(os.environ["OPSGATE_VAR_DIR"], exist_ok=True)


def suffix() -> str:
    """Appended to file names a test process writes (worker and web logs)."""
    return f"-{WORKER}" if WORKER else ""

"""Run every benchmark and print the figures (see bench/README.md).

    .venv/bin/python bench/run.py [--quick]

Uses the machine's PostgreSQL (a fresh database `opsgate_bench`) and Redis
(db 12), a moto server process on loopback, and real Celery worker processes.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Importable once ROOT is on the path (the script runs as bench/run.py).
from bench import machine  # noqa: E402
from bench.processes import (  # noqa: E402
    install_signal_handlers,
    start_moto,
    stop_children,
)
from bench.sections import SECTIONS  # noqa: E402


def prepare_environment(db: str, broker: str) -> tuple[subprocess.Popen, str]:
    moto, url = start_moto()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": db,
            "CELERY_BROKER_URL": broker,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "LOG_LEVEL": "WARNING",
            "OPSGATE_VAR_DIR": str(ROOT / "var" / "bench"),
            # moto has no Session Manager sessions and no service-specific
            # credentials API (as in the demo).
            "OPSGATE_TERMINATE_SSM_SESSIONS": "false",
            "OPSGATE_DELETE_SERVICE_CREDENTIALS": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            # As deployed: no debug mode (cached templates, no SQL recording).
            "DJANGO_DEBUG": "false",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    # The shared cache (rate limits, used TOTP codes, throttling) in Redis, as
    # deployed (docs/settings.md), not a database table.
    os.environ.setdefault("CACHE_URL", broker.split("?")[0] + "?key_prefix=bench-cache")
    import django

    django.setup()
    return moto, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument(
        "--db", default="postgres://postgres@127.0.0.1:5432/opsgate_bench"
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    install_signal_handlers()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            f"CREATE DATABASE {args.db.rsplit('/', 1)[1]}",
        ],
        capture_output=True,
    )
    moto, moto_url = prepare_environment(args.db, args.broker)
    print(f"# opsgate benchmarks — {machine.describe()}\n")
    try:
        for name in args.only or SECTIONS:
            started = time.monotonic()
            SECTIONS[name](moto_url, args.quick)
            print(f"({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    finally:
        stop_children()


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Install what the tests need, check lint, imports, migrations and the docs, and
# run the whole suite against the machine's
# PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), starting them when down.
# Extra arguments go to pytest, e.g. scripts/test.sh -k import
set -euo pipefail
# Wall time per phase, printed at the end (and on failure) by phase_times.
STARTED=$(date +%s)
PHASE_START=$STARTED
PHASE_NAME="bootstrap"
PHASES=()
phase() {  # phase NAME: the previous phase ends here, NAME begins
  local now
  now=$(date +%s)
  PHASES+=("$PHASE_NAME $((now - PHASE_START))")
  PHASE_NAME="$1"
  PHASE_START=$now
}
phase_times() {
  local status=$? now line
  now=$(date +%s)
  PHASES+=("$PHASE_NAME $((now - PHASE_START))")
  echo "==> wall time"
  for line in "${PHASES[@]}"; do
    printf '    %-10s %5ss\n' ${line}
  done
  printf '    %-10s %5ss\n' total $((now - STARTED))
  return $status
}
trap phase_times EXIT
source "$(dirname "$0")/bootstrap.sh" test
# Compiled bytecode is kept, under var/pycache: with PYTHONDONTWRITEBYTECODE
# set (some shells and CI images set it) every Python process the suite starts
# (two test processes, Celery workers, gunicorn, manage.py, the CLI) compiled
# Django, botocore and moto again, about 2 s of CPU each.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$ROOT/var/pycache"

phase services
# Debian's chromium for the browser tests (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium with apt"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: run 'sudo apt-get install chromium' (browser tests need it)" >&2
  fi
fi

# PostgreSQL and Redis: start them when they are down (root on this kind of machine).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "==> starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  sleep 1
fi

export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
export OPSGATE_VAR_DIR="$ROOT/var/test"
# The cache every process of a test shares (web workers, Celery workers): Redis,
# in the broker's database number under its own key prefix, so runs on other
# database numbers never meet. TEST_CACHE_URL overrides it.
if [ -z "${TEST_CACHE_URL:-}" ] && [[ "$CELERY_BROKER_URL" == redis://* ]]; then
  TEST_CACHE_URL="${CELERY_BROKER_URL%%\?*}?key_prefix=opsgate-test-cache"
fi
export CACHE_URL="${TEST_CACHE_URL:-locmem://}"
mkdir -p "$OPSGATE_VAR_DIR"

phase ruff
echo "==> ruff"
ruff check .
phase imports
echo "==> import contracts (pyproject.toml [tool.importlinter])"
lint-imports --no-cache >/dev/null || lint-imports --no-cache
phase migrations
echo "==> migrations are up to date"
python manage.py makemigrations --check --dry-run >/dev/null
phase docs
echo "==> documentation (generated pages up to date, mkdocs build --strict)"
python scripts/docs_api.py --check
python scripts/docs_cli.py --check
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$ROOT/var/site"
phase pytest
echo "==> pytest"
# Two processes (pytest-xdist) by default, a file at a time each: the suite's
# worker, web and browser tests wait on subprocesses more than they compute.
# The longest files go first (tests/conftest.py LONG_FILES), not xdist's
# order by number of tests, which left them for the end.
# OPSGATE_TEST_PROCESSES=0 runs everything in this one process.
python -m pytest -n "${OPSGATE_TEST_PROCESSES:-2}" --dist loadfile \
  --no-loadscope-reorder "$@"

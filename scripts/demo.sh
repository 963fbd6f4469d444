#!/usr/bin/env bash
# Set everything up and run the opsgate demo on the embedded defaults:
# SQLite, a moto server as AWS, a real Celery worker (with beat) on kombu's
# filesystem broker, and Django at http://127.0.0.1:8000 with demo data.
# The demo starts from scratch every time (moto keeps its state in memory).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" demo

PORT="${OPSGATE_DEMO_PORT:-8000}"
MOTO_PORT="${OPSGATE_DEMO_MOTO_PORT:-5055}"
port_busy() { python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)) != 0)"; }
for p in "$PORT" "$MOTO_PORT"; do
  if port_busy "$p"; then
    echo "Port $p on 127.0.0.1 is in use. Stop what runs there (an earlier demo?) or set" >&2
    echo "OPSGATE_DEMO_PORT / OPSGATE_DEMO_MOTO_PORT." >&2
    exit 1
  fi
done

export OPSGATE_VAR_DIR="$ROOT/var/demo"
rm -rf "$OPSGATE_VAR_DIR"; mkdir -p "$OPSGATE_VAR_DIR"
unset DATABASE_URL CELERY_BROKER_URL CACHE_URL AWS_PROFILE
export CELERY_BROKER_URL="filesystem://localhost/"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1 MOTO_IAM_LOAD_MANAGED_POLICIES=true
# No debug mode: a wrong address shows opsgate's own "Not found" page, not
# Django's list of every URL (whitenoise serves the static files).
export OPSGATE_SWEEP_SECONDS=30 DJANGO_DEBUG=false OPSGATE_DEMO=true
# moto implements neither SSM Session Manager sessions nor service-specific
# credentials: skip those calls in the demo (real AWS keeps both on).
export OPSGATE_TERMINATE_SSM_SESSIONS=false OPSGATE_DELETE_SERVICE_CREDENTIALS=false
export OPSGATE_BASE_URL="http://127.0.0.1:$PORT"  # links in e-mails

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "==> starting moto (embedded AWS) on 127.0.0.1:$MOTO_PORT"
# moto_server plus IAM user permissions boundaries, which moto lacks.
python -m provisioning.moto_ext -H 127.0.0.1 -p "$MOTO_PORT" >"$OPSGATE_VAR_DIR/moto.log" 2>&1 &
pids+=($!)
python - "$AWS_ENDPOINT_URL" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1); break
    except Exception:
        time.sleep(0.2)
else:
    sys.exit("moto did not start; see var/demo/moto.log")
PY

echo "==> the deployment step: opsgate's permissions boundaries, as an administrator"
python manage.py opsgate_boundaries --apply

echo "==> database (SQLite) and demo data"
python manage.py migrate --noinput -v 0
python manage.py demo_seed

echo "==> starting the Celery worker and beat (log: var/demo/worker.log)"
celery -A portal worker -B --concurrency 2 --loglevel INFO \
  >"$OPSGATE_VAR_DIR/worker.log" 2>&1 &
pids+=($!)

python manage.py demo_login_help --url "http://127.0.0.1:$PORT"
python manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)
wait "${pids[-1]}"

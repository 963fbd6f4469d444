# Sourced by scripts/demo.sh and scripts/test.sh: a virtualenv in .venv with
# opsgate and the given extras installed (re-installed when pyproject.toml changes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "opsgate needs Python 3.11 or newer (python3.11, python3.12 or python3.13)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
EXTRAS="$1"
STAMP=".venv/.installed-$EXTRAS"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "==> installing opsgate[$EXTRAS] into .venv"
  # uv resolves and installs the same versions as pip in seconds instead of
  # minutes; pip does it when uv cannot be had.
  if .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 &&
     .venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[$EXTRAS]"; then
    :
  else
    echo "==> uv failed: installing with pip"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 \
      | grep -v "^WARNING: Location" || true
  fi
  .venv/bin/python -c "import django, celery, boto3" || { echo "install failed" >&2; exit 1; }
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"

#!/usr/bin/env bash
# Mutation testing of the core modules with their targeted tests (mutmut);
# prints the kill rate per module. Slow: not part of CI. See docs/development.md, Mutation testing.
#   scripts/mutation.sh [policies|validation|access_requests|sync ...] [--diffs] [--sample K]
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" test
python -c "import mutmut" 2>/dev/null || python -m pip install --quiet --disable-pip-version-check "mutmut==3.8.1"
# Database modules use the machine's PostgreSQL like the test command.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/opsgate_mutation}"
exec python scripts/mutation.py "$@"

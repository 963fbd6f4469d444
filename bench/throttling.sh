#!/usr/bin/env bash
# Issue 26 at full size: AWS throttles half of one account's IAM writes for two
# minutes while 500 people are imported and 200 approvals arrive, through real
# worker processes (beat sweeping every 2 s). Prints the longest queue, the AWS
# calls made against those that got through, and the time to converge after
# the throttling stops. The suite runs the same scenario small
# (tests/test_throttling_process.py). Takes about 10 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPSGATE_THROTTLE_PEOPLE="${OPSGATE_THROTTLE_PEOPLE:-500}"
export OPSGATE_THROTTLE_APPROVALS="${OPSGATE_THROTTLE_APPROVALS:-200}"
export OPSGATE_THROTTLE_SECONDS="${OPSGATE_THROTTLE_SECONDS:-120}"
export OPSGATE_TEST_PROCESSES=0
exec scripts/test.sh tests/test_throttling_process.py -q -s -p no:cacheprovider

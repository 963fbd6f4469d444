"""Loaded by test worker processes (PYTHONPATH=tests/slowaws): makes the AWS
operations named in OPSGATE_TEST_SLOW_AWS_OPS slow, so a test can kill the
worker in the middle of provisioning."""

import os
import time

_ops = {op for op in os.environ.get("OPSGATE_TEST_SLOW_AWS_OPS", "").split(",") if op}
if _ops:
    import botocore.client

    _original = botocore.client.BaseClient._make_api_call
    _delay = float(os.environ.get("OPSGATE_TEST_SLOW_AWS_SECONDS", "3"))

    def _slow(self, operation_name, api_params):
        if operation_name in _ops:
            time.sleep(_delay)
        return _original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _slow

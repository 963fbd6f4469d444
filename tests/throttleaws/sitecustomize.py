"""Loaded by test and bench worker processes (PYTHONPATH=tests/throttleaws):
AWS throttles half of the IAM writes made with one access key (one account)
until a deadline, the way IAM answers a busy account: `Throttling` at the
HTTP layer, so botocore's own retries see it first. Every IAM call is counted
in Redis, so a test can compare the calls made with the calls needed.

OPSGATE_TEST_THROTTLE_UNTIL   epoch seconds; no throttling after it
OPSGATE_TEST_THROTTLE_KEY     the access key whose calls are throttled
OPSGATE_TEST_THROTTLE_RATIO   share of its writes throttled (default 0.5)
OPSGATE_TEST_COUNT_URL        redis://… where the counters go"""

import os
import random
import time

_until = float(os.environ.get("OPSGATE_TEST_THROTTLE_UNTIL", "0") or 0)
_key = os.environ.get("OPSGATE_TEST_THROTTLE_KEY", "")
_ratio = float(os.environ.get("OPSGATE_TEST_THROTTLE_RATIO", "0.5"))
_count_url = os.environ.get("OPSGATE_TEST_COUNT_URL", "")
WRITES = (
    "Create", "Put", "Attach", "Add", "Update", "Delete", "Tag", "Untag",
    "Detach", "Remove", "Set", "Enable", "Deactivate",
)  # fmt: skip
BODY = (
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
    b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>0</RequestId></ErrorResponse>"
)

if _count_url or _until:
    import botocore.client
    from botocore.awsrequest import AWSResponse

    _redis = None
    if _count_url:
        import redis

        _redis = redis.Redis.from_url(_count_url)

    class _Raw:
        def stream(self, *args, **kwargs):
            yield BODY

    def _count(name: str) -> None:
        if _redis is not None:
            try:
                _redis.incr(name)
            except Exception:  # noqa: BLE001 - counting must never break a call
                pass

    def _handler(request, event_name, **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        client = kwargs.get("_opsgate_client")
        key = client._request_signer._credentials.access_key if client else ""
        mine = key == _key
        _count(f"calls:{'throttled-account' if mine else 'other'}")
        if (
            mine
            and time.time() < _until
            and operation.startswith(WRITES)
            and random.random() < _ratio
        ):
            _count("throttled")
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw())
        return None

    _create = botocore.client.ClientCreator.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = _create(self, service_name, *args, **kwargs)
        if service_name == "iam":

            def handler(request, event_name, **kw):
                return _handler(request, event_name, _opsgate_client=client, **kw)

            client.meta.events.register("before-send.iam", handler)
        return client

    botocore.client.ClientCreator.create_client = create_client

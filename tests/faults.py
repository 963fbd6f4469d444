"""Inject AWS failures with real error codes at the HTTP layer of botocore.

moto never throttles, never fails and accepts principals that IAM rejects; these
fake responses come back from "AWS" as the real service would send them, so
botocore's retry handler and opsgate's error mapping both see the real thing.
"""

import contextlib
from collections import defaultdict

from botocore.awsrequest import AWSResponse

from provisioning import aws

_XML = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<Error><Type>{type}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args, **kwargs):
        yield self._body


class Faults:
    def __init__(self) -> None:
        self.plan: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self.sent: list[str] = []

    def fail(
        self,
        operation: str,
        code: str,
        message: str = "injected",
        *,
        status: int = 400,
        times: int = 1,
    ) -> None:
        self.plan[operation].extend([(status, code, message)] * times)

    def handler(self, request, event_name: str, **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        self.sent.append(operation)
        if self.plan.get(operation):
            status, code, message = self.plan[operation].pop(0)
            body = _XML.format(
                type="Receiver" if status >= 500 else "Sender",
                code=code,
                message=message,
            ).encode()
            return AWSResponse(
                request.url, status, {"Content-Type": "text/xml"}, _Raw(body)
            )
        return None


@contextlib.contextmanager
def injected(account=None, service: str = "iam"):
    """Yield a Faults whose plan applies to opsgate's client for `account`."""
    faults = Faults()
    client = aws.client(service, account)
    client.meta.events.register(f"before-send.{service}", faults.handler)
    try:
        yield faults
    finally:
        client.meta.events.unregister(f"before-send.{service}", faults.handler)

"""Inject AWS failures with real error codes at the HTTP layer of botocore.

moto never throttles, never fails and accepts principals that IAM rejects; these
fake responses come back from "AWS" as the real service would send them, so
botocore's retry handler and opsgate's error mapping both see the real thing.
"""

import contextlib
from collections import defaultdict

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

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


_OK = (
    '<{op}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    "<{op}Result>{result}</{op}Result>"
    "<ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></{op}Response>"
)


class Faults:
    def __init__(self) -> None:
        self.plan: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self.answers: dict[str, str] = {}
        self.sent: list[str] = []
        self.every: tuple[int, str, str] | None = None
        self.down = False

    def answer(self, operation: str, result_xml: str = "") -> None:
        """Answer every `operation` call with success and this result, for the
        IAM operations moto does not implement (service-specific credentials)."""
        self.answers[operation] = _OK.format(op=operation, result=result_xml)

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

    def fail_every(
        self, code: str, message: str = "injected", *, status: int = 400
    ) -> None:
        """Answer every call with this error (an account that refuses all)."""
        self.every = (status, code, message)

    def unreachable(self) -> None:
        """Every call fails to connect (an endpoint that does not answer)."""
        self.down = True

    def handler(self, request, event_name: str, **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        self.sent.append(operation)
        if self.down:
            raise EndpointConnectionError(endpoint_url=request.url)
        if self.plan.get(operation) or self.every:
            planned = self.plan.get(operation)
            status, code, message = planned.pop(0) if planned else self.every
            body = _XML.format(
                type="Receiver" if status >= 500 else "Sender",
                code=code,
                message=message,
            ).encode()
            return AWSResponse(
                request.url, status, {"Content-Type": "text/xml"}, _Raw(body)
            )
        if operation in self.answers:
            body = self.answers[operation].encode()
            return AWSResponse(
                request.url, 200, {"Content-Type": "text/xml"}, _Raw(body)
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


def service_credentials_xml(user: str, credential_ids: list[str]) -> str:
    members = "".join(
        f"<member><UserName>{user}</UserName><Status>Active</Status>"
        f"<ServiceUserName>{user}-at-1</ServiceUserName>"
        "<CreateDate>2026-01-01T00:00:00Z</CreateDate>"
        f"<ServiceSpecificCredentialId>{cid}</ServiceSpecificCredentialId>"
        "<ServiceName>codecommit.amazonaws.com</ServiceName></member>"
        for cid in credential_ids
    )
    return f"<ServiceSpecificCredentials>{members}</ServiceSpecificCredentials>"

"""The opsgate API over HTTP: the server URL checked (no token in clear over
a network), the token sent, HTTP errors turned into Failures with their exit
codes."""

from typing import Any
from urllib.parse import urlsplit

import httpx

from opsgate_cli import config
from opsgate_cli.common import (
    BAD_INPUT,
    EXIT_BY_STATUS,
    NO_NETWORK,
    REFUSED,
    SERVER_ERROR,
    STATE,
    UNAUTHENTICATED,
    Failure,
)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_url(url: str, *, insecure: bool) -> str:
    """The server URL, refused unless https:// (or http:// to this machine,
    or anywhere with --insecure): the token must not cross a network in
    clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Failure(
            f"Not a server URL: {url!r}. Give https://opsgate.example.", BAD_INPUT
        )
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS and not insecure:
        raise Failure(
            f"Refusing {url}: over http:// your token would cross the network "
            "unencrypted. Use https://, or --insecure in a lab.",
            BAD_INPUT,
        )
    return url.rstrip("/")


class Api:
    def __init__(self, url: str | None = None, token: str | None = None):
        saved = config.load()
        url = url or saved.get("url") or ""
        self.token = token if token is not None else saved.get("token")
        if not url:
            raise Failure(
                "Not signed in: run `opsgate login --url https://opsgate.example`.",
                UNAUTHENTICATED,
            )
        self.insecure = bool(STATE["insecure"] or saved.get("insecure"))
        self.url = check_url(url, insecure=self.insecure)

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs) -> Any:
        headers = {"User-Agent": "opsgate-cli"}
        if auth:
            if not self.token:
                raise Failure("Not signed in: run `opsgate login`.", UNAUTHENTICATED)
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                headers=headers,
                timeout=30,
                **kwargs,
            )
        except httpx.TransportError as exc:
            raise Failure(
                f"Cannot reach {self.url} ({type(exc).__name__}): check the "
                "network, the VPN and the URL.",
                NO_NETWORK,
            ) from None
        if response.status_code < 400:
            return response.json() if response.content else None
        return self._error(response)

    def _error(self, response: httpx.Response):
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        status = response.status_code
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        if status == 401:
            detail = (
                "Your token is expired, revoked or unknown: run `opsgate login` again."
            )
        fields = problem.get("errors") or {}
        lines = [
            f"  {field}: {' '.join(messages)}"
            for field, messages in fields.items()
            if field != "__all__"
        ]
        message = "\n".join([detail, *lines]) if lines and status == 400 else detail
        code = EXIT_BY_STATUS.get(status, SERVER_ERROR if status >= 500 else REFUSED)
        raise Failure(message, code, problem)

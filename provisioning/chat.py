"""Posting chat notifications to a project's Slack or Teams incoming webhook
(accounts_app.chat says what; this task does the HTTP call, with retries)."""

import http.client
import ipaddress
import json
import logging
import random
import re
import socket
import ssl
from urllib.parse import urlsplit

from celery import shared_task
from django.core.exceptions import ValidationError

from accounts_app.chat import validate_webhook_url, webhook_url
from accounts_app.models import Project

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
MAX_RETRIES = 5
MAX_ANSWER_BYTES = 64 * 1024

# --- What the chat shows: the requester's words, never markup -------------------

_MENTION = re.compile(r"@(channel|here|everyone|all)\b", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\[\]()]+")
_TEAMS_MARKDOWN = re.compile(r"([\\`*_\[\]{}#~|!])")


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(text: str) -> str:
    """Slack reads `<!channel>`, `<@U…>` and `<https://evil|Approve>` as
    mentions and disguised links; escaped as Slack asks (&, <, >) they are
    shown as typed. `@channel` gets a word joiner so it notifies nobody."""
    return _MENTION.sub("@\u2060\\1", _html_escape(text))


def teams_text(text: str) -> str:
    """Teams renders markdown and some HTML: escape both, except inside bare
    links (the portal's own, which Teams shows as they are)."""
    pieces = []
    last = 0
    for link in _URL.finditer(text):
        pieces.append(_TEAMS_MARKDOWN.sub(r"\\\1", text[last : link.start()]))
        pieces.append(link.group())
        last = link.end()
    pieces.append(_TEAMS_MARKDOWN.sub(r"\\\1", text[last:]))
    return _MENTION.sub("@\u2060\\1", _html_escape("".join(pieces)))


def payload(channel: str, text: str) -> dict:
    # Slack and Teams (incoming webhooks and Workflows) both take {"text"}.
    if channel == "slack":
        return {"text": slack_text(text)}
    return {"text": teams_text(text)}


# --- Sending: only to a public address, the one that was checked ----------------


class UnsafeWebhook(Exception):
    """The URL or the addresses its host resolves to are not allowed: a
    permanent refusal, never retried."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_allowed(address: str) -> bool:
    """A public unicast address: not loopback, private, link-local (the
    169.254.169.254 metadata service), shared, multicast, reserved or
    unspecified, also when written as IPv4-mapped or NAT64 IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour or ip.teredo:
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def vetted_address(host: str, port: int) -> str:
    """Resolve `host` once and return an address to connect to; refuse when
    any of its addresses is not public (a name pointing both ways is hostile)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise OSError(f"{host} has no address")
    unsafe = sorted({a for a in addresses if not address_allowed(a)})
    if unsafe:
        raise UnsafeWebhook(f"{host} resolves to a non-public address {unsafe[0]}")
    return addresses[0]


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address` (already vetted), with the certificate, SNI and Host
    header of the name: a second DNS answer (rebinding) is never asked for."""

    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def http_post(url: str, body: dict) -> None:
    """POST JSON; raise on a network error or a non-2xx answer (a redirect
    included: none is followed). UnsafeWebhook when the URL is not allowed."""
    try:
        validate_webhook_url(url)  # again: saved before the allow-list, or narrowed
    except ValidationError as exc:
        raise UnsafeWebhook(exc.messages[0]) from None
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    address = vetted_address(host, port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = PinnedHTTPSConnection(host, address, port, TIMEOUT_SECONDS)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")
    finally:
        connection.close()


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def post_chat(self, project_id: int, channel: str, text: str) -> bool:
    project = Project.objects.filter(pk=project_id).first()
    url = webhook_url(project, channel) if project else ""
    if not url:
        return False  # removed since: nothing to do
    try:
        http_post(url, payload(channel, text))
    except UnsafeWebhook as exc:
        log.error("chat %s of project %s refused: %s", channel, project_id, exc)
        return False
    except Exception as exc:  # any failure: retry later, the decision stands
        if self.request.retries >= MAX_RETRIES:
            log.error(
                "chat %s of project %s failed for good: %s", channel, project_id, exc
            )
            return False
        countdown = random.uniform(1, min(300, 2 ** (self.request.retries + 2)))
        raise self.retry(exc=exc, countdown=countdown) from None
    return True


def on_chat_requested(
    sender, project_id: int, channel: str, text: str, **kwargs
) -> None:
    try:
        post_chat.apply_async(args=[project_id, channel, text])
    except Exception as exc:  # broker down: the decision is committed; log it
        log.warning(
            "could not enqueue chat %s of project %s: %s", channel, project_id, exc
        )

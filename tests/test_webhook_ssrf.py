"""Issue 21 item 5: chat webhooks are no way into the worker's network. URLs
are checked when saved (https, a DNS name on OPSGATE_WEBHOOK_ALLOWED_HOSTS,
port 443) and when sent (every address the name resolves to is public; the
connection goes to that checked address, with the name's SNI and Host; no
redirect is followed). The requester's words are escaped for Slack and Teams."""

import socket
import ssl
import threading

import pytest
from django.core.exceptions import ValidationError

from accounts_app import chat
from accounts_app.models import AuditEvent, Project
from accounts_app.services import rules
from provisioning import chat as chat_tasks

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8443/hook",
        "https://localhost:8443/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://0x7f000001:8443/hook",
        "https://2130706433:8443/hook",
        "https://127.1/hook",
        "https://hooks.slack.com:8443/services/T/B/X",
        "https://hooks.slack.com.evil.example/services/T/B/X",
        "https://evilhooks.slack.com/services/T/B/X",
        "https://webhook.office.com/x",
        "https://internal.example/hook",
    ],
)
def test_a_webhook_off_the_allow_list_is_refused_when_saved(payments, alice, url):
    with pytest.raises(ValidationError) as info:
        rules.project_webhooks_set(
            actor=alice.user, project=payments, slack_webhook_url=url
        )
    assert info.value.message_dict["slack_webhook_url"]
    payments.refresh_from_db()
    assert payments.slack_webhook_url == ""
    assert not AuditEvent.objects.filter(action="project.webhooks").exists()


def test_the_allow_list_is_a_setting(payments, alice, settings):
    settings.OPSGATE_WEBHOOK_ALLOWED_HOSTS = ["chat.example.com"]
    rules.project_webhooks_set(
        actor=alice.user,
        project=payments,
        slack_webhook_url="https://chat.example.com/hooks/1",
    )
    with pytest.raises(ValidationError) as info:
        chat.validate_webhook_url(SLACK)
    assert "chat.example.com" in info.value.messages[0]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "169.254.169.254",
        "fd00:ec2::254",
        "fe80::1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "224.0.0.251",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert not chat_tasks.address_allowed(address)


@pytest.mark.parametrize("address", ["52.89.214.238", "2606:4700::6810:85e5"])
def test_public_addresses_are_allowed(address):
    assert chat_tasks.address_allowed(address)


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    seen: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            seen.append(peer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize(
    "family, loopback",
    [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::ffff:127.0.0.1")],
)
def test_a_name_resolving_to_loopback_is_never_connected(
    payments, listener, monkeypatch, family, loopback
):
    """An allowed name whose DNS answer is the worker's own loopback: the
    worker refuses for good and connects to nothing (before: it connected)."""
    port, seen = listener
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "hooks.slack.com":
            sockaddr = (
                (loopback, port) if family == socket.AF_INET else (loopback, port, 0, 0)
            )
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    Project.objects.filter(pk=payments.pk).update(slack_webhook_url=SLACK)
    result = chat_tasks.post_chat.apply(args=[payments.pk, "slack", "hello"])
    assert result.get() is False  # refused for good: no retry
    assert seen == []


def test_a_url_saved_before_the_allow_list_is_refused_when_sent(
    payments, listener, monkeypatch
):
    port, seen = listener
    Project.objects.filter(pk=payments.pk).update(
        slack_webhook_url=f"https://127.0.0.1:{port}/hook"
    )
    result = chat_tasks.post_chat.apply(args=[payments.pk, "slack", "hello"])
    assert result.get() is False
    assert seen == []


def test_the_connection_goes_to_the_checked_address_with_the_name_and_no_redirect(
    monkeypatch,
):
    """One DNS answer, checked; the socket is opened to that address (a
    rebinding second answer is never asked), TLS names the host, the request
    carries its Host header, and a redirect is an error, not followed."""
    answers = iter(["52.89.214.238", "127.0.0.1"])
    resolved: list = []

    def resolve(host, port, *args, **kwargs):
        resolved.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    ours, theirs = socket.socketpair()
    connected: list = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append((address, timeout))
        return ours

    class FakeTls(ssl.SSLContext):
        """Records the SNI name and talks plain text to the socketpair."""

        server_hostname = None

        def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
            FakeTls.server_hostname = server_hostname
            return sock

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(
        chat_tasks, "_tls_context", lambda: FakeTls(ssl.PROTOCOL_TLS_CLIENT)
    )
    received = bytearray()

    def server():
        while b"\r\n\r\n" not in received:
            received.extend(theirs.recv(4096))
        theirs.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1/\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    thread = threading.Thread(target=server, daemon=True)
    thread.start()
    with pytest.raises(OSError, match="302"):
        chat_tasks.http_post(SLACK, {"text": "hi"})
    thread.join(5)
    theirs.close()
    assert resolved == ["hooks.slack.com"]
    assert connected == [(("52.89.214.238", 443), chat_tasks.TIMEOUT_SECONDS)]
    assert FakeTls.server_hostname == "hooks.slack.com"
    assert b"Host: hooks.slack.com\r\n" in bytes(received)
    assert bytes(received).startswith(b"POST /services/T000/B000/XXXX HTTP/1.1")
    assert chat_tasks.TIMEOUT_SECONDS <= 5


# --- The requester's words are shown, never obeyed -----------------------------


def test_slack_mentions_and_disguised_links_are_escaped():
    text = chat_tasks.payload(
        "slack",
        "fix <!channel> <@U123> <https://evil.example|Approve here> @here & more "
        "https://portal.example/approvals/",
    )["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example|Approve here&gt;" in text
    assert "@here" not in text and "@\u2060here" in text
    assert "&amp; more" in text
    assert text.endswith("https://portal.example/approvals/")


def test_teams_markdown_and_html_are_escaped():
    text = chat_tasks.payload(
        "teams",
        "[Approve](https://evil.example) **now** <img src=x onerror=alert(1)> "
        "@channel https://portal.example/approvals/",
    )["text"]
    assert "\\[Approve\\](https://evil.example)" in text
    assert "\\*\\*now\\*\\*" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "@\u2060channel" in text
    assert text.endswith("https://portal.example/approvals/")

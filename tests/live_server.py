"""The live server (pytest-django's `live_server`: the browser, CLI and
schemathesis tests) answers with a few long-lived threads, as gunicorn's
threads do, instead of Django's thread per request.

Django's ThreadedWSGIServer starts a thread for each request and closes its
database connections when it ends: every request, a page's static files
included, opened a new PostgreSQL connection (a new server process) and a new
Redis connection, about a sixth of the server's time in the schemathesis test.
Here each thread keeps its connections between requests (closed by Django's
request_finished handler after CONN_MAX_AGE or an error, as in production) and
closes them when the server stops. What a new thread started without is still
reset before each request: opsgate's per-thread boto3 session and clients
(tests change endpoints and credentials between requests).

Not a ThreadingMixIn, so Django answers every request with `Connection:
close` (basehttp.ServerHandler): an idle keep-alive connection of the browser
never holds one of the threads; a connection the browser opened ahead and
sends nothing on is dropped after IDLE_SECONDS (it reconnects), so that it
neither holds a thread for long nor keeps the thread, and its database
connection, past the server's stop."""

import queue
import threading

from django.core.servers.basehttp import WSGIServer
from django.db import connections

THREADS = 8
IDLE_SECONDS = 5


class PooledWSGIServer(WSGIServer):
    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        # In-memory SQLite's connections, shared with the test (none on PostgreSQL).
        self.connections_override = connections_override or {}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._pool = [
            threading.Thread(target=self._serve, daemon=True) for _ in range(THREADS)
        ]
        for thread in self._pool:
            thread.start()

    def process_request(self, request, client_address):
        self._requests.put((request, client_address))

    def _serve(self) -> None:
        from provisioning.aws import clients

        for alias, conn in self.connections_override.items():
            connections[alias] = conn
        try:
            while (item := self._requests.get()) is not None:
                request, client_address = item
                clients._local.__dict__.clear()  # this thread's session and clients
                request.settimeout(IDLE_SECONDS)
                try:
                    self.finish_request(request, client_address)
                except Exception:
                    self.handle_error(request, client_address)
                finally:
                    self.shutdown_request(request)
        finally:
            if not self.connections_override:
                connections.close_all()

    def server_close(self):
        super().server_close()
        for _ in self._pool:
            self._requests.put(None)
        for thread in self._pool:
            thread.join(timeout=2 * IDLE_SECONDS)


def install() -> None:
    from django.test.testcases import LiveServerThread

    LiveServerThread.server_class = PooledWSGIServer

"""portal.wsgi's application with the answering process's id in a response
header, so tests that run gunicorn know which worker answered each request."""

import os

from portal.wsgi import application as portal_application

PID_HEADER = "X-Test-Worker-Pid"


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(
            status, [*headers, (PID_HEADER, str(os.getpid()))], exc_info
        )

    return portal_application(environ, start)

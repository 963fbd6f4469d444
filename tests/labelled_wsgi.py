"""portal.wsgi's application with the answering process's id in a response
header, so tests that run gunicorn know which worker answered each request."""

import os

from django.conf import settings

from portal.wsgi import application as portal_application
from tests import hashers

# The test process hashed the passwords with its quick hasher (tests/hashers.py):
# the same here, or each sign-in would re-hash at the deployed cost.
hashers.install(settings)

PID_HEADER = "X-Test-Worker-Pid"


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(
            status, [*headers, (PID_HEADER, str(os.getpid()))], exc_info
        )

    return portal_application(environ, start)

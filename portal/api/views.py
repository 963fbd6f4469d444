"""The REST API under /api/v1/: the same services, permission rules and audit
rows as the pages, with the token's owner as the actor.

Each module registers its operations on `api` (portal.api.app) when imported;
the order of these imports is the order of the OpenAPI document
(scripts/docs_api.py --check compares it with the committed one)."""

# isort: off
from portal.api import me  # noqa: F401
from portal.api import requests  # noqa: F401
from portal.api import approvals  # noqa: F401
from portal.api import grants  # noqa: F401
from portal.api import admin  # noqa: F401
from portal.api import device  # noqa: F401

# isort: on
from portal.api.app import api

__all__ = ["api"]

"""The API object under /api/v1/ (its OpenAPI title, auth and parser) and
what its operations share: paging, the error responses, the caller's requests."""

import math
from typing import Annotated

from django.http import HttpRequest
from ninja import Path

from accounts_app.models import AccessRequest
from portal.api.core import (
    ERRORS,
    OpsgateApi,
    StrictJsonParser,
    TokenAuth,
    install_handlers,
)

PAGE_SIZE = 50
PK = Annotated[int, Path(ge=1, le=2**31 - 1)]

api = OpsgateApi(
    title="opsgate API",
    version="1",
    description=(
        "Access requests, approvals and grants for AWS operators. Authenticate "
        "with `Authorization: Bearer <personal access token>` (portal → API "
        "tokens, or `opsgate login`). Errors are RFC 9457 problem details."
    ),
    auth=TokenAuth(),
    parser=StrictJsonParser(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_handlers(api)


def _r(codes: dict) -> dict:
    return {**ERRORS, **codes}


def _page(rows, page: int, size: int = PAGE_SIZE) -> tuple[list, dict]:
    count = rows.count()
    pages = max(1, math.ceil(count / size))
    start = (page - 1) * size
    return list(rows[start : start + size]), {
        "count": count,
        "page": page,
        "pages": pages,
    }


def _my_requests(request: HttpRequest):
    return AccessRequest.objects.filter(requester__user=request.user).select_related(
        "role__project", "role__account", "requester", "decided_by"
    )

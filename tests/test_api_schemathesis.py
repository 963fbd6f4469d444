"""Schemathesis against the schema the live server serves, with all its
checks: explicit examples, the coverage phase and generated calls, positive
and negative data, signed in as a requester, an approver and an admin. No
5xx; every response matches the schema (status, content type, headers,
body); schema-invalid input is refused (400) and schema-valid input is not
refused for its shape. Bounded for CI (SCHEMATHESIS_EXAMPLES calls an
operation per persona, 8 by default; SCHEMATHESIS_PHASES, e.g.
"examples,fuzzing" to skip the coverage phase, for a longer or shorter run)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts_app.services import tokens
from tests import helpers
from tests.conftest import give_totp

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "examples,coverage,fuzzing").split(",")
PERSONAS = ("requester", "approver", "admin")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
]


@pytest.fixture
def api_schema(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    # The tokens come from the personas below: no generated (or removed)
    # Authorization header, which they would override.
    schema.config.generation.update(
        modes=list(GenerationMode), with_security_parameters=False
    )
    schema.config.phases.update(phases=PHASES)
    # Schema-valid input may still break a business rule, answered 400 with
    # field errors (documented on every operation): an unknown project, a
    # wrong TOTP code, cancelling a request that is no longer pending.
    schema.config.checks.positive_data_acceptance.expected_statuses.append("400")
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def persona_tokens(transactional_db, alice, bob, carol, deploy_role):
    """A token with every scope for carol (requester, with a pending
    request), bob (the project's approver, with TOTP) and alice (admin)."""
    give_totp(alice.user)
    give_totp(bob.user)
    helpers.request(carol, deploy_role)
    people = {"requester": carol.user, "approver": bob.user, "admin": alice.user}

    def fresh(persona: str) -> str:
        owner = people[persona]
        return tokens.token_create(
            owner=owner,
            name=f"schemathesis-{persona}",
            scopes=["read", "request", "approve"],
            days=1,
            actor=owner,
        )[1]

    return {"fresh": fresh, **{persona: fresh(persona) for persona in people}}


@pytest.fixture(autouse=True)
def _no_rate_limit(settings, monkeypatch):
    from portal.api import device

    settings.OPSGATE = {**settings.OPSGATE, "API_RATE_PER_MINUTE": 10**6}
    monkeypatch.setattr(device, "DEVICE_STARTS_PER_MINUTE", 10**6)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_every_generated_call_within_its_schema(
    case, live_server, persona_tokens
):
    for persona in PERSONAS:  # each generated call, as each of them
        token = persona_tokens[persona]
        if case.path.endswith("/me/logout"):  # revokes the token it is called with
            token = persona_tokens["fresh"](persona)
        case.call_and_validate(
            base_url=live_server.url,
            headers={"Authorization": f"Bearer {token}"},
            checks=CHECKS,
        )

"""Property-based requests against every operation of the server's own OpenAPI document
(schemathesis): whatever a client sends, valid or not, the server answers without a 5xx, with
a status code the document declares, and with a body that matches the declared schema.

Each operation is one test with a fresh database and app, driven in-process: schemathesis
runs the app (lifespan included) on its own event loop thread, so every database call of a
test happens on that one loop. Generation is derandomized and bounded: the same cases on
every run, in CI time.

Nothing in the document is left out. Logout only clears a cookie the fuzzer does not use;
the destructive routes (revoke a device, revoke or rotate a secret) name random ids, and
each operation starts from its own database anyway.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from lunaris_server.app import create_app
from lunaris_server.core.settings import Settings
from tests.support import Seeded, register_body, update_row

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25
DEVICE_ID = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"


def _openapi_document() -> dict[str, Any]:
    """The document as the server publishes it at /api/openapi.json. Building the app opens
    nothing (no database file or connection until its lifespan starts)."""
    settings = Settings(database_url="sqlite+aiosqlite:///never-opened.db", secret_key="unused")
    app = create_app(settings)
    return app.openapi()


# Loaded eagerly (one pytest item per operation); schemathesis's fixture-based loader does not
# run on this pytest. WebSocket routes (/ws/console, /ws/agent) and the console's HTML pages
# are not in the document, so they are not fuzzed here; they have their own tests.
schema = schemathesis.openapi.from_dict(_openapi_document())


@dataclass(frozen=True)
class Fleet:
    """Who the requests speak as: the agent routes take a device token, the rest an admin
    API token (so the fuzzer gets past authentication and reaches the routes' own logic)."""

    http: asgi.ASGIClient
    admin_headers: dict[str, str]
    device_headers: dict[str, str]

    def headers_for(self, path: str) -> dict[str, str]:
        return self.device_headers if path.startswith("/api/agent/") else self.admin_headers


@pytest.fixture
def fuzzed_app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    # Schemathesis started the app's lifespan on its own loop; stop it (sweepers, bus, pool).
    asgi.shutdown_lifespans()


@pytest.fixture
def fleet(fuzzed_app: FastAPI, seeded: Seeded) -> Iterator[Fleet]:
    """One enrolled device with updates waiting and a queued command, so that the lists the
    fuzzer reads have rows in them."""
    with asgi.get_client(fuzzed_app) as http:
        body = register_body(seeded.enrollment_secret, device_id=DEVICE_ID)
        registered = http.post("/api/agent/register", json=body)
        assert registered.status_code == 200, registered.text
        device = {"Authorization": f"Bearer {registered.json()['device_token']}"}
        rows = [update_row("Mozilla.Firefox"), update_row("Git.Git", source="msstore")]
        report = http.post("/api/agent/update-report", json={"updates": rows}, headers=device)
        assert report.status_code == 200, report.text
        command = http.post(
            f"/api/devices/{DEVICE_ID}/commands",
            json={"kind": "RUN_UPDATES", "packages": None},
            headers=seeded.auth_headers,
        )
        assert command.status_code == 201, command.text
        yield Fleet(http=http, admin_headers=seeded.auth_headers, device_headers=device)


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    # One database and app per operation, shared by its cases: they only add rows, which
    # later cases may read, and every answer is checked the same way.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_operation_answers_as_documented(case: schemathesis.Case, fleet: Fleet) -> None:
    case.call_and_validate(
        base_url=f"http://{asgi.HOST}",
        session=fleet.http,
        headers=fleet.headers_for(case.path),
        checks=CHECKS,
    )


REFUSED_BY_RULE = {"/api/updates/Bad%00.Id/run"}
"""Refused on every database before any query: no winget id holds a control character
(``lunaris_protocol.packages.is_targetable_id``)."""


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/agent/update-report", {"updates": [update_row("Bad\x00.Id")]}),
        ("POST", "/api/auth/login", {"username": "ad\x00min", "password": "correct horse"}),
        ("POST", "/api/enrollment-secrets", {"name": "office\x00"}),
        ("GET", "/api/devices?q=PC%00", None),
        ("GET", "/api/updates?source=winget%00", None),
        ("GET", "/api/audit?action=%00", None),
        ("POST", "/api/updates/Bad%00.Id/run", None),
    ],
)
def test_a_nul_character_is_invalid_input_not_a_server_error(
    fleet: Fleet, backend: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """PostgreSQL cannot store U+0000 in text: there such a request is refused (422), and
    SQLite, which can, answers it as any other request."""
    response = fleet.http.request(method, path, json=body, headers=fleet.headers_for(path))
    if path in REFUSED_BY_RULE:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    elif backend == "postgresql":
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"
    else:
        assert response.status_code < 500, response.text


def test_an_id_beyond_the_database_integer_is_invalid_input(fleet: Fleet) -> None:
    too_large = 2**63
    response = fleet.http.delete(
        f"/api/enrollment-secrets/{too_large}", headers=fleet.admin_headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"

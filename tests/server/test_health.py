"""Health and readiness probes."""

import json
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lunaris_server.app import create_app
from lunaris_server.core.settings import Settings
from lunaris_server.web.health import LivenessFastPath
from tests.support import RecordingApp

pytestmark = pytest.mark.e2e


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.headers["x-request-id"]


async def test_healthz_is_answered_in_front_of_the_framework(app):
    framework = RecordingApp(app)
    transport = httpx.ASGITransport(app=LivenessFastPath(framework))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        alive = await client.get("/healthz")
        assert alive.status_code == 200
        assert alive.json() == {"status": "ok"}
        assert framework.paths == []
        assert (await client.post("/healthz")).status_code == 405  # the route answers that
        assert (await client.get("/readyz")).status_code == 200
    assert framework.paths == ["/healthz", "/readyz"]


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path, backend):
    url = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
        if backend == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path}/missing-dir/sub/x.db"
    )
    app = create_app(Settings(database_url=url, data_dir=tmp_path, secret_key="k"))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def test_request_id_is_echoed_when_sane(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert response.headers["x-request-id"] != "bad id\n"


def test_live_server_logs_json_lines_with_request_ids(live_server):
    response = httpx.get(f"{live_server.base_url}/api/devices", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 401
    live_server.stop()
    records = [json.loads(line) for line in live_server.log().splitlines() if line.startswith("{")]
    requests = [
        r for r in records if r.get("event") == "request" and r.get("request_id") == "req-42"
    ]
    assert len(requests) == 1
    assert (requests[0]["path"], requests[0]["status"]) == ("/api/devices", 401)
    assert all("timestamp" in r and "level" in r for r in records)

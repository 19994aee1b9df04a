"""A query parameter the route does not know is an error, not something to ignore: a
misspelt filter that is ignored answers with every row, and nobody notices."""

import re

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.support import api_login, create_secret, create_user, register_device

UNKNOWN = "no_such_parameter"


def api_get_routes(app: FastAPI) -> list[str]:
    """Every GET route under /api, its path parameters filled in with plausible values."""
    fill = {
        "device_id": "00000000-0000-4000-8000-000000000000",
        "command_id": "00000000-0000-4000-8000-000000000000",
        "deployment_id": "00000000-0000-4000-8000-000000000000",
        "package": "Git.Git",
        "group_id": "1",
        "rule_id": "1",
        "policy_id": "1",
        "version": "0.2.0",
    }
    paths = []
    for route in iter_route_contexts(app.routes):
        if (
            route.path
            and route.path.startswith("/api/")
            and "GET" in (route.methods or ())
            and route.path != app.openapi_url  # FastAPI's own document, not an API route
        ):
            paths.append(re.sub(r"{(\w+)(:\w+)?}", lambda m: fill[m.group(1)], route.path))
    return sorted(paths)


async def test_devices_search_with_the_wrong_name_is_refused(app, client):
    await create_user(app, "admin")
    secret = await create_secret(app)
    for hostname in ("PC-A", "PC-B"):
        await register_device(client, secret, hostname=hostname)
    await api_login(client)
    response = await client.get("/api/devices", params={"search": "PC-B"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "search" in error["message"]
    assert error["details"][0]["loc"] == ["query", "search"]
    assert (await client.get("/api/devices", params={"q": "PC-B"})).json()["total"] == 1


async def test_every_api_get_route_refuses_an_unknown_parameter(app, client):
    await create_user(app, "admin")
    await api_login(client)
    paths = api_get_routes(app)
    assert "/api/devices" in paths
    assert "/api/commands" in paths
    assert "/api/deployments" in paths
    assert len(paths) > 10
    for path in paths:
        response = await client.get(path, params={UNKNOWN: "1"})
        assert response.status_code == 422, (path, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request", path
        assert UNKNOWN in error["message"], path


async def test_writes_and_the_agent_routes_refuse_them_too(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    heartbeat = await client.post(
        "/api/agent/heartbeat", params={"force": "1"}, json={}, headers=device.headers
    )
    assert heartbeat.status_code == 422, heartbeat.text
    assert "force" in heartbeat.json()["error"]["message"]
    report = await client.post(
        "/api/agent/update-report",
        params={"replace": "1"},
        json={"updates": []},
        headers=device.headers,
    )
    assert report.status_code == 422, report.text


async def test_the_console_and_the_api_name_the_scan_error_filter_alike(app, client):
    await create_user(app, "admin")
    secret = await create_secret(app)
    broken = await register_device(client, secret, hostname="PC-BROKEN")
    await register_device(client, secret, hostname="PC-FINE")
    failed = await client.post(
        "/api/agent/update-report",
        json={"updates": [], "scan_error": {"code": "0x8A15000F", "message": "no source"}},
        headers=broken.headers,
    )
    assert failed.status_code == 200, failed.text
    await api_login(client)
    api = await client.get("/api/devices", params={"has_scan_error": "yes"})
    assert [d["hostname"] for d in api.json()["items"]] == ["PC-BROKEN"]
    page = await client.get("/devices", params={"has_scan_error": "yes"})
    assert page.status_code == 200
    assert "PC-BROKEN" in page.text
    assert "PC-FINE" not in page.text
    assert 'name="has_scan_error"' in page.text
    # The old console address still works: it is sent to the new one.
    old = await client.get("/devices", params={"scan_error": "yes", "q": "PC"})
    assert old.status_code in (301, 308), old.text
    assert old.headers["location"] == "/devices?q=PC&has_scan_error=yes"

"""The agent API: registration, tokens, heartbeats, and refusal of bad input."""

import uuid

import pytest
from sqlalchemy import func, select

from lunaris_server.audit.models import AuditEntry
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.models import Device
from tests.support import (
    api_login,
    app_state,
    create_secret,
    register_body,
    register_device,
    update_row,
)


async def count(app, model) -> int:
    async with app_state(app).database.session() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def load_device(app, device_id: str) -> Device:
    async with app_state(app).database.session() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


async def test_register_returns_token_and_intervals(app, client):
    secret = await create_secret(app)
    body = register_body(secret, hostname="LT-FIN-0042")
    response = await client.post("/api/agent/register", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["device_token"].startswith("lnd_")
    assert answer["heartbeat_interval_s"] == 60
    assert answer["scan_interval_s"] == 3600
    device = await load_device(app, body["device_id"])
    assert device.hostname == "LT-FIN-0042"
    # Only the hash is kept.
    assert answer["device_token"] not in device.token_hash


async def test_reregistering_issues_new_token_and_invalidates_old(app, client):
    secret = await create_secret(app)
    first = await register_device(client, secret)
    second = await register_device(
        client, secret, device_id=first.device_id, hostname="RENAMED", device_token=first.token
    )
    assert second.token != first.token
    old = await client.post("/api/agent/heartbeat", json={}, headers=first.headers)
    assert old.status_code == 401
    new = await client.post("/api/agent/heartbeat", json={}, headers=second.headers)
    assert new.status_code == 200
    assert await count(app, Device) == 1
    assert (await load_device(app, first.device_id)).hostname == "RENAMED"


async def test_old_token_is_refused_at_once_even_after_fast_heartbeats(app, client):
    """Heartbeats are answered from memory; re-registering must still end the old token."""
    secret = await create_secret(app)
    first = await register_device(client, secret)
    for _ in range(3):
        ok = await client.post("/api/agent/heartbeat", json={}, headers=first.headers)
        assert ok.status_code == 200
    await register_device(client, secret, device_id=first.device_id, device_token=first.token)
    old = await client.post("/api/agent/heartbeat", json={}, headers=first.headers)
    assert old.status_code == 401


async def test_token_speaks_only_for_its_own_device(app, client):
    secret = await create_secret(app)
    a = await register_device(client, secret, hostname="PC-A")
    b = await register_device(client, secret, hostname="PC-B")
    report = {"updates": [update_row("Git.Git")], "scan_error": None}
    response = await client.post("/api/agent/update-report", json=report, headers=a.headers)
    assert response.status_code == 200
    heartbeat = {"hostname": "PC-A-NEW"}
    response = await client.post("/api/agent/heartbeat", json=heartbeat, headers=a.headers)
    assert response.status_code == 200
    device_a, device_b = await load_device(app, a.device_id), await load_device(app, b.device_id)
    assert (device_a.hostname, device_a.updates_count) == ("PC-A-NEW", 1)
    assert (device_b.hostname, device_b.updates_count) == ("PC-B", 0)


async def test_heartbeat_accepts_empty_body_and_updates_changed_fields(app, client, clock):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    # The token's first use is written at once (from then on, replacing it needs proof).
    assert (await client.post("/api/agent/heartbeat", headers=device.headers)).is_success
    assert (await load_device(app, device.device_id)).token_used_at == clock.now
    clock.advance(seconds=30)
    response = await client.post("/api/agent/heartbeat", headers=device.headers)
    assert response.status_code == 200
    # A heartbeat that only says "still here" is written with others, within a second.
    assert (await load_device(app, device.device_id)).last_seen_at < clock.now
    assert await app_state(app).part(LastSeenWriter).flush() == 1
    assert (await load_device(app, device.device_id)).last_seen_at == clock.now
    response = await client.post(
        "/api/agent/heartbeat",
        json={"agent_version": "0.2.0", "os_version": "Windows 11 Pro 24H2"},
        headers=device.headers,
    )
    assert response.status_code == 200
    stored = await load_device(app, device.device_id)
    assert (stored.agent_version, stored.os_version) == ("0.2.0", "Windows 11 Pro 24H2")
    assert stored.hostname == "PC-0001"


async def test_register_is_audited_without_the_secret(app, client):
    secret = await create_secret(app)
    await register_device(client, secret)
    async with app_state(app).database.session() as session:
        entries = list(await session.scalars(select(AuditEntry)))
    actions = [e.action for e in entries]
    assert "device.register" in actions
    assert all(secret not in repr(e.details) for e in entries)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "device token is required"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer lnd_not-a-real-token"}, "unknown or revoked"),
    ],
)
async def test_agent_calls_without_valid_token_are_refused(app, client, headers, message):
    response = await client.post("/api/agent/heartbeat", json={}, headers=headers)
    assert response.status_code == 401
    assert message in response.json()["error"]["message"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_malformed_json_is_a_clear_400_and_writes_nothing(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    response = await client.post(
        "/api/agent/update-report",
        content=b'{"updates": [',
        headers={**device.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert (await load_device(app, device.device_id)).last_scan_at is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"updates": "nope"}, "updates"),
        ({"updates": [{"package_identifier": "x"}]}, "name"),
        ({"updates": [update_row("x" * 257)]}, "package_identifier"),
        (
            {"updates": [update_row("Git.Git", installed_version_typo="1")]},
            "installed_version_typo",
        ),
        ({"updates": [update_row("Git.Git")] * 5001}, "updates"),
        ({"updates": [], "scan_error": {"code": "x", "message": 3}}, "message"),
    ],
)
async def test_bad_reports_are_refused_and_write_nothing(app, client, body, where):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    response = await client.post("/api/agent/update-report", json=body, headers=device.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert where in error["message"] + repr(error["details"])
    stored = await load_device(app, device.device_id)
    assert (stored.last_scan_at, stored.updates_count) == (None, 0)


async def test_bad_registration_body_is_refused(app, client):
    secret = await create_secret(app)
    response = await client.post(
        "/api/agent/register", json=register_body(secret, device_id="not-a-uuid")
    )
    assert response.status_code == 422
    assert "device_id" in response.json()["error"]["message"]
    response = await client.post("/api/agent/register", json=register_body(secret, hostname=""))
    assert response.status_code == 422
    assert await count(app, Device) == 0


async def test_oversized_body_is_refused_before_parsing(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    huge = b'{"hostname": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/api/agent/heartbeat",
        content=huge,
        headers={**device.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_oversized_streamed_body_without_length_is_refused(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)

    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/api/agent/heartbeat",
        content=chunks(),
        headers={**device.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_unknown_device_id_in_console_is_404(app, client):
    from tests.support import create_user

    await create_user(app)
    await api_login(client)
    response = await client.get(f"/api/devices/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

"""Enrollment secrets: expiry, use limits, revocation, and the admin API."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from lunaris_server.audit.models import AuditEntry
from lunaris_server.devices import registration
from lunaris_server.devices.models import Device
from lunaris_server.enrollment.models import EnrollmentSecret
from tests.support import api_login, app_state, create_secret, create_user, register_body


async def device_count(app) -> int:
    async with app_state(app).database.session() as session:
        return await session.scalar(select(func.count()).select_from(Device)) or 0


async def register(client, secret):
    return await client.post("/api/agent/register", json=register_body(secret))


async def refused_because(app, response) -> str:
    """A refusal tells the caller nothing of why; the audit log tells the admin."""
    assert response.status_code == 401
    assert response.json()["error"]["message"] == registration.REFUSED
    async with app_state(app).database.session() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "device.register_refused")
            .order_by(AuditEntry.id.desc())
        )
    assert entry is not None
    reason: str = entry.details["reason"]
    return reason


async def test_unknown_secret_is_refused(app, client):
    response = await register(client, "lne_wrong")
    assert await refused_because(app, response) == "unknown enrollment secret"
    assert await device_count(app) == 0


async def test_expired_secret_is_refused(app, client, clock):
    secret = await create_secret(app, expires_in=timedelta(hours=1))
    assert (await register(client, secret)).status_code == 200
    clock.advance(hours=1, seconds=1)
    response = await register(client, secret)
    assert "expired" in await refused_because(app, response)
    assert await device_count(app) == 1


async def test_use_limit_is_enforced(app, client):
    secret = await create_secret(app, max_uses=2)
    assert (await register(client, secret)).status_code == 200
    assert (await register(client, secret)).status_code == 200
    response = await register(client, secret)
    assert "use limit" in await refused_because(app, response)
    assert await device_count(app) == 2


async def test_concurrent_registrations_never_exceed_the_limit(app, client):
    secret = await create_secret(app, max_uses=3)
    responses = await asyncio.gather(*(register(client, secret) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [401] * 7
    assert await device_count(app) == 3


async def test_revoked_secret_is_refused_through_admin_api(app, client):
    await create_user(app)
    await api_login(client)
    created = await client.post(
        "/api/enrollment-secrets", json={"name": "Berlin office", "max_uses": 50}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("lne_")
    assert (await register(client, body["secret"])).status_code == 200

    listed = (await client.get("/api/enrollment-secrets")).json()
    assert [(s["name"], s["uses"], s["max_uses"]) for s in listed] == [("Berlin office", 1, 50)]
    assert "secret" not in listed[0]

    revoked = await client.delete(f"/api/enrollment-secrets/{body['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await register(client, body["secret"])
    assert "revoked" in await refused_because(app, response)
    assert await device_count(app) == 1


async def test_secret_is_stored_hashed(app):
    secret = await create_secret(app)
    async with app_state(app).database.session() as session:
        stored = await session.scalar(select(EnrollmentSecret))
    assert stored is not None
    assert secret not in stored.secret_hash


async def test_bad_secret_requests_are_refused(app, client):
    await create_user(app)
    await api_login(client)
    for body in ({"name": ""}, {"name": "x", "max_uses": 0}, {"name": "x", "expires_in_s": 5}):
        response = await client.post("/api/enrollment-secrets", json=body)
        assert response.status_code == 422, body
    assert (await client.get("/api/enrollment-secrets")).json() == []
    assert (await client.delete("/api/enrollment-secrets/999")).status_code == 404


async def _admin_client(app, client):
    await create_user(app)
    await api_login(client)


async def test_rotating_a_secret_replaces_it_at_once(app, client, clock):
    await _admin_client(app, client)
    old = (
        await client.post(
            "/api/enrollment-secrets",
            json={"name": "Berlin office", "max_uses": 50, "expires_in_s": 7 * 86_400},
        )
    ).json()
    assert (await register(client, old["secret"])).status_code == 200
    clock.advance(hours=2)  # (a console session lasts 12 hours)

    rotated = await client.post(f"/api/enrollment-secrets/{old['id']}/rotate")
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["name"] == "Berlin office"
    assert (new["max_uses"], new["uses"]) == (50, 0)
    assert new["secret"] != old["secret"]
    assert new["expires_at"].startswith((clock.now + timedelta(days=7)).date().isoformat())

    refused = await register(client, old["secret"])
    assert "revoked" in await refused_because(app, refused)
    assert (await register(client, new["secret"])).status_code == 200
    audit = (await client.get("/api/audit?action=enrollment_secret.rotate")).json()
    assert [e["details"]["replaced_by"] for e in audit["items"]] == [new["id"]]


async def test_a_rotated_secret_can_keep_working_for_a_grace_period(app, client, clock):
    await _admin_client(app, client)
    old = (await client.post("/api/enrollment-secrets", json={"name": "Rollout"})).json()
    rotated = await client.post(
        f"/api/enrollment-secrets/{old['id']}/rotate", json={"grace_s": 3600}
    )
    assert rotated.status_code == 201
    assert (await register(client, old["secret"])).status_code == 200
    clock.advance(hours=1, seconds=1)
    assert (await register(client, old["secret"])).status_code == 401
    assert (await register(client, rotated.json()["secret"])).status_code == 200


async def test_rotation_refuses_what_it_cannot_do_and_changes_nothing(app, client):
    await _admin_client(app, client)
    old = (await client.post("/api/enrollment-secrets", json={"name": "Rollout"})).json()
    await client.delete(f"/api/enrollment-secrets/{old['id']}")
    assert (await client.post(f"/api/enrollment-secrets/{old['id']}/rotate")).status_code == 409
    assert (await client.post("/api/enrollment-secrets/999/rotate")).status_code == 404
    negative = await client.post(
        f"/api/enrollment-secrets/{old['id']}/rotate", json={"grace_s": -1}
    )
    assert negative.status_code == 422
    listed = (await client.get("/api/enrollment-secrets")).json()
    assert [s["id"] for s in listed] == [old["id"]]

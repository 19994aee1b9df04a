"""Taking over an enrolled device with an enrollment secret and its id, performed against the
agent API: the id is no secret (it is in URLs and logs) and a secret is shared by a whole
rollout, so the two together must not replace the real agent's token."""

from datetime import timedelta

import httpx

from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.devices import reenrollments
from lunaris_server.enrollment import service as enrollment
from tests.support import (
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_body,
)


async def test_a_secret_and_a_known_device_id_do_not_take_over_the_device(app, client):
    await create_user(app)
    api = {"Authorization": f"Bearer {await create_api_token(app, 'admin')}"}
    rollout, attacker_secret = await create_secret(app, "rollout"), await create_secret(app, "x")
    body = register_body(rollout, hostname="PC-REAL")
    real = await client.post("/api/agent/register", json=body)
    token = {"Authorization": f"Bearer {real.json()['device_token']}"}
    report = {
        "updates": [
            {
                "package_identifier": "Git.Git",
                "name": "Git",
                "installed_version": "2.46",
                "available_version": "2.47",
                "source": "winget",
            }
        ]
    }
    assert (await client.post("/api/agent/update-report", json=report, headers=token)).is_success
    queued = await client.post(
        f"/api/devices/{body['device_id']}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers=api,
    )
    assert queued.status_code == 201

    stolen = register_body(attacker_secret, device_id=body["device_id"], hostname="EVIL")
    attack = await client.post("/api/agent/register", json=stolen)

    assert attack.status_code in (403, 409)
    assert "device_token" not in attack.text
    still = await client.post("/api/agent/heartbeat", json={}, headers=token)
    assert still.status_code == 200
    assert [c["command_id"] for c in still.json()["commands"]] == [queued.json()["id"]]
    device = (await client.get(f"/api/devices/{body['device_id']}", headers=api)).json()
    assert (device["hostname"], device["updates_count"]) == ("PC-REAL", 1)


async def test_a_refused_secret_says_nothing_of_why(app, client, clock):
    """Whether a secret exists, expired, was used up or revoked is the admin's to know (in
    the audit log), not a caller's with no valid secret."""
    expired = await create_secret(app, "expired", expires_in=timedelta(minutes=1))
    used_up = await create_secret(app, "used up", max_uses=1)
    revoked = await create_secret(app, "revoked")
    assert (await client.post("/api/agent/register", json=register_body(used_up))).is_success
    state = app_state(app)
    async with state.database.session() as session:
        secrets = await enrollment.list_secrets(session)
        target = next(s for s in secrets if s.name == "revoked")
        await enrollment.revoke_secret(
            session, secret_id=target.id, now=state.clock(), actor=CLI_ACTOR
        )
        await session.commit()
    clock.advance(minutes=2)
    answers = [
        await client.post("/api/agent/register", json=register_body(secret))
        for secret in ("no-such-secret", expired, used_up, revoked)
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.json()["error"]["message"] for a in answers}) == 1
    audit_log = await client.get("/api/audit?limit=50", headers=await admin_headers(app))
    reasons = [
        e["details"]["reason"]
        for e in audit_log.json()["items"]
        if e["action"] == "device.register_refused"
    ]
    assert sorted(reasons) == sorted(
        [
            "unknown enrollment secret",
            "this enrollment secret has expired",
            "this enrollment secret has reached its use limit",
            "this enrollment secret has been revoked",
        ]
    )


async def admin_headers(app) -> dict[str, str]:
    await create_user(app, "auditor")
    return {"Authorization": f"Bearer {await create_api_token(app, 'auditor')}"}


async def register(client, secret: str, device_id: str, **extra) -> httpx.Response:
    body = register_body(secret, device_id=device_id, **extra)
    return await client.post("/api/agent/register", json=body)


async def enrolled(app, client) -> tuple[str, str, dict[str, str]]:
    """A secret and a device that has used its token (one heartbeat)."""
    secret = await create_secret(app)
    body = register_body(secret)
    first = await client.post("/api/agent/register", json=body)
    device_id, token = body["device_id"], first.json()["device_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).is_success
    return secret, device_id, headers


async def test_an_agent_whose_first_answer_was_lost_registers_again(app, client, clock):
    secret = await create_secret(app)
    body = register_body(secret)
    assert (await client.post("/api/agent/register", json=body)).is_success
    clock.advance(minutes=14)  # the answer never arrived; the agent asks again
    again = await client.post("/api/agent/register", json=body)
    assert again.status_code == 200
    # Once the new token has been used, the grace is over.
    headers = {"Authorization": f"Bearer {again.json()['device_token']}"}
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).is_success
    assert (await client.post("/api/agent/register", json=body)).status_code == 403


async def test_the_grace_ends_after_fifteen_minutes_even_unused(app, client, clock):
    secret = await create_secret(app)
    body = register_body(secret)
    assert (await client.post("/api/agent/register", json=body)).is_success
    clock.advance(minutes=15, seconds=1)
    assert (await client.post("/api/agent/register", json=body)).status_code == 403


async def test_a_report_uses_the_token_too(app, client):
    secret = await create_secret(app)
    body = register_body(secret)
    token = (await client.post("/api/agent/register", json=body)).json()["device_token"]
    report = await client.post(
        "/api/agent/update-report",
        json={"updates": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert report.is_success
    assert (await client.post("/api/agent/register", json=body)).status_code == 403


async def test_the_current_token_is_proof(app, client):
    secret, device_id, headers = await enrolled(app, client)
    token = headers["Authorization"].removeprefix("Bearer ")
    again = await register(client, secret, device_id, device_token=token, hostname="RENAMED")
    assert again.status_code == 200
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).status_code == 401
    wrong = await register(client, secret, device_id, device_token="lnd_not_its_token")
    assert wrong.status_code == 403  # the new token is unused, but the device has spoken


async def test_an_admin_approves_the_agent_that_asked_and_nobody_else(app, client):
    secret, device_id, headers = await enrolled(app, client)
    admin = await admin_headers(app)
    uses_before = await secret_uses(app)
    asked = await register(client, secret, device_id, registration_key="key-of-the-new-pc")
    assert asked.status_code == 409
    assert asked.json()["error"]["code"] == "reenrollment_pending"
    again = await register(client, secret, device_id, registration_key="key-of-the-new-pc")
    assert again.status_code == 409
    assert await secret_uses(app) == uses_before  # waiting spends no use of the secret
    listed = f"/api/devices/{device_id}/reenrollments"
    pending = (await client.get(listed, headers=admin)).json()
    assert [(p["status"], p["attempts"], p["hostname"]) for p in pending] == [
        ("pending", 2, "PC-0001")
    ]
    approved = await client.post(f"{listed}/{pending[0]['id']}/approve", headers=admin)
    assert approved.json()["status"] == "approved"

    other = await register(client, secret, device_id, registration_key="somebody-else")
    assert other.status_code == 409  # a new request of its own, not admitted
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).is_success
    admitted = await register(client, secret, device_id, registration_key="key-of-the-new-pc")
    assert admitted.status_code == 200
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).status_code == 401
    replayed = await register(client, secret, device_id, registration_key="key-of-the-new-pc")
    assert replayed.status_code != 200  # an approval admits once
    actions = [e["action"] for e in (await client.get("/api/audit", headers=admin)).json()["items"]]
    assert {"device.reenroll_requested", "device.reenroll_approved", "device.reregister"} <= set(
        actions
    )


async def test_a_refused_request_stays_refused(app, client):
    secret, device_id, headers = await enrolled(app, client)
    admin = await admin_headers(app)
    await register(client, secret, device_id, registration_key="thief")
    listed = f"/api/devices/{device_id}/reenrollments"
    (request,) = (await client.get(listed, headers=admin)).json()
    refused = await client.post(f"{listed}/{request['id']}/refuse", headers=admin)
    assert refused.json()["status"] == "refused"
    assert (await client.get(listed, headers=admin)).json() == []
    again = await register(client, secret, device_id, registration_key="thief")
    assert again.status_code == 403
    late = await client.post(f"{listed}/{request['id']}/approve", headers=admin)
    assert late.status_code == 409
    assert (await client.post("/api/agent/heartbeat", json={}, headers=headers)).is_success


async def test_revoked_devices_enroll_again_unless_blocked(app, client):
    secret, device_id, _ = await enrolled(app, client)
    admin = await admin_headers(app)
    revoked = await client.post(f"/api/devices/{device_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert (await register(client, secret, device_id)).status_code == 200

    blocked = await client.post(f"/api/devices/{device_id}/revoke?block=true", headers=admin)
    assert blocked.status_code == 200
    refused = await register(client, secret, device_id, registration_key="stolen-pc")
    assert refused.status_code == 403
    assert "blocked" in refused.json()["error"]["message"]


async def secret_uses(app) -> int:
    async with app_state(app).database.session() as session:
        return sum(s.uses for s in await enrollment.list_secrets(session))


async def test_an_approval_can_be_withdrawn_and_a_revocation_voids_it(app, client):
    secret, device_id, _ = await enrolled(app, client)
    admin = await admin_headers(app)
    await register(client, secret, device_id, registration_key="attacker")
    listed = f"/api/devices/{device_id}/reenrollments"
    (asked,) = (await client.get(listed, headers=admin)).json()
    assert (await client.post(f"{listed}/{asked['id']}/approve", headers=admin)).is_success
    withdrawn = await client.post(f"{listed}/{asked['id']}/refuse", headers=admin)
    assert withdrawn.json()["status"] == "refused"
    assert (
        await register(client, secret, device_id, registration_key="attacker")
    ).status_code == 403

    await register(client, secret, device_id, registration_key="second")
    (again,) = (await client.get(listed, headers=admin)).json()
    assert (await client.post(f"{listed}/{again['id']}/approve", headers=admin)).is_success
    await client.post(f"/api/devices/{device_id}/revoke", headers=admin)
    assert (await register(client, secret, device_id)).status_code == 200  # the real agent
    late = await register(client, secret, device_id, registration_key="second")
    assert late.status_code == 409  # the approval went with the revocation: asks anew


async def test_a_lost_answer_after_an_approval_asks_again_visibly(app, client):
    secret, device_id, _ = await enrolled(app, client)
    admin = await admin_headers(app)
    await register(client, secret, device_id, registration_key="new-pc")
    listed = f"/api/devices/{device_id}/reenrollments"
    (asked,) = (await client.get(listed, headers=admin)).json()
    await client.post(f"{listed}/{asked['id']}/approve", headers=admin)
    admitted = await register(client, secret, device_id, registration_key="new-pc")
    assert admitted.status_code == 200  # ... and the answer never arrived
    token = {"Authorization": f"Bearer {admitted.json()['device_token']}"}
    assert (await client.post("/api/agent/heartbeat", json={}, headers=token)).is_success
    retry = await register(client, secret, device_id, registration_key="new-pc")
    assert retry.status_code == 409
    assert [p["status"] for p in (await client.get(listed, headers=admin)).json()] == ["pending"]


async def test_requests_waiting_for_one_device_are_capped_and_keep_what_was_asked(app, client):
    secret, device_id, _ = await enrolled(app, client)
    admin = await admin_headers(app)
    for n in range(reenrollments.MAX_OPEN_PER_DEVICE):
        asked = await register(client, secret, device_id, registration_key=f"junk-{n}")
        assert asked.status_code == 409
    over = await register(client, secret, device_id, registration_key="one-too-many")
    assert over.status_code == 403
    assert "too many requests" in over.json()["error"]["message"]
    relabel = await register(client, secret, device_id, registration_key="junk-0", hostname="X")
    assert relabel.status_code == 409
    listed = (await client.get(f"/api/devices/{device_id}/reenrollments", headers=admin)).json()
    assert len(listed) == reenrollments.MAX_OPEN_PER_DEVICE
    assert {p["hostname"] for p in listed} == {"PC-0001"}  # the first ask, not the later one

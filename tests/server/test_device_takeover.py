"""Taking over an enrolled device with an enrollment secret and its id, performed against the
agent API: the id is no secret (it is in URLs and logs) and a secret is shared by a whole
rollout, so the two together must not replace the real agent's token."""

from datetime import timedelta

import pytest

from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.enrollment import service as enrollment
from tests.support import (
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_body,
)


@pytest.mark.xfail(strict=True, reason="any valid secret re-registers a known device id")
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


@pytest.mark.xfail(strict=True, reason="refusals say why a secret is not valid")
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

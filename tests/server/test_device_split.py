"""An admin splits a cloned identity: the PC named (by hostname, or by address for clones
that kept one hostname) becomes a device of its own at its next heartbeat, the other keeps
the record; a lost answer gets the same new device with a fresh token."""

import pytest

from tests.server.test_device_clones import beat, enroll
from tests.support import create_api_token, create_user


async def admin_headers(app) -> dict[str, str]:
    await create_user(app, "root", role="admin")
    return {"Authorization": f"Bearer {await create_api_token(app, 'root')}"}


async def flagged_by_hostnames(app, client_from, clock):
    device_id, token = await enroll(client_from, app)
    office = client_from("10.1.0.5")
    for hostname in ("PC-GOLDEN", "PC-COPY", "PC-GOLDEN"):
        clock.advance(seconds=30)
        await beat(office, token, hostname)
    return device_id, token, office


async def heartbeat(client, token, hostname: str) -> dict:
    answer = await client.post("/api/agent/heartbeat", json={"hostname": hostname}, headers=token)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_pc_named_gets_its_own_identity_and_the_other_keeps_the_record(
    app, client_from, clock
):
    device_id, shared, office = await flagged_by_hostnames(app, client_from, clock)
    admin = await admin_headers(app)
    shown = (await office.get(f"/api/devices/{device_id}", headers=admin)).json()
    assert sorted(shown["clone_suspected"]["hostnames"]) == ["PC-COPY", "PC-GOLDEN"]
    split = await office.post(
        f"/api/devices/{device_id}/split", json={"hostname": "pc-copy"}, headers=admin
    )
    assert split.status_code == 201, split.text
    assert split.json()["status"] == "pending"

    # The PC that keeps the record heartbeats as before.
    kept = await heartbeat(office, shared, "PC-GOLDEN")
    assert kept["new_identity"] is None
    # The other one is answered with an identity of its own, and nothing else.
    answer = await heartbeat(office, shared, "PC-COPY")
    assert answer["commands"] == []
    identity = answer["new_identity"]
    assert identity["device_id"] != device_id
    own = {"Authorization": f"Bearer {identity['device_token']}"}
    assert (await heartbeat(office, own, "PC-COPY"))["new_identity"] is None

    new = (await office.get(f"/api/devices/{identity['device_id']}", headers=admin)).json()
    assert new["hostname"] == "PC-COPY"
    assert new["clone_suspected"] is None
    # The next heartbeat of the shared record completes the split and lowers its flag.
    await heartbeat(office, shared, "PC-GOLDEN")
    old = (await office.get(f"/api/devices/{device_id}", headers=admin)).json()
    assert old["hostname"] == "PC-GOLDEN"
    assert old["clone_suspected"] is None
    assert old["split_pending"] is False
    history = (await office.get(f"/api/devices/{device_id}/splits", headers=admin)).json()
    assert [(s["status"], s["new_device_id"]) for s in history] == [
        ("completed", identity["device_id"])
    ]
    actions = [
        e["action"]
        for e in (await office.get("/api/audit", headers=admin)).json()["items"]
        if e["action"].startswith("device.split")
    ]
    assert sorted(actions) == ["device.split", "device.split_handed_over", "device.split_requested"]


async def test_a_lost_answer_gets_the_same_device_with_a_fresh_token(app, client_from, clock):
    device_id, shared, office = await flagged_by_hostnames(app, client_from, clock)
    admin = await admin_headers(app)
    await office.post(
        f"/api/devices/{device_id}/split", json={"hostname": "PC-COPY"}, headers=admin
    )
    first = (await heartbeat(office, shared, "PC-COPY"))["new_identity"]
    again = (await heartbeat(office, shared, "PC-COPY"))["new_identity"]
    assert again["device_id"] == first["device_id"]
    assert again["device_token"] != first["device_token"]
    lost = await office.post(
        "/api/agent/heartbeat",
        json={},
        headers={"Authorization": f"Bearer {first['device_token']}"},
    )
    assert lost.status_code == 401
    devices = (await office.get("/api/devices", headers=admin)).json()
    assert sorted(d["hostname"] for d in devices["items"]) == ["PC-COPY", "PC-GOLDEN"]


async def test_clones_that_share_a_hostname_are_split_by_address(app, client_from, clock):
    device_id, shared = await enroll(client_from, app)
    for address in ("10.1.0.5", "10.1.0.9", "10.1.0.5"):
        clock.advance(seconds=30)
        await beat(client_from(address), shared)
    admin = await admin_headers(app)
    office = client_from("10.1.0.5")
    shown = (await office.get(f"/api/devices/{device_id}", headers=admin)).json()
    assert sorted(shown["clone_suspected"]["addresses"]) == ["10.1.0.5", "10.1.0.9"]
    split = await office.post(
        f"/api/devices/{device_id}/split", json={"address": "10.1.0.9"}, headers=admin
    )
    assert split.status_code == 201, split.text
    assert (await heartbeat(office, shared, "PC-GOLDEN"))["new_identity"] is None
    other = await heartbeat(client_from("10.1.0.9"), shared, "PC-GOLDEN")
    assert other["new_identity"] is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"hostname": "PC-ELSEWHERE"}, 422),  # not one it alternated between
        ({"address": "10.9.9.9"}, 422),
        ({"hostname": "PC-COPY", "address": "10.1.0.5"}, 422),  # one of them
        ({}, 422),
        ({"hostname": "PC-COPY", "keep": "PC-GOLDEN"}, 422),  # unknown field
    ],
)
async def test_bad_splits_are_refused_and_change_nothing(app, client_from, clock, body, status):
    device_id, shared, office = await flagged_by_hostnames(app, client_from, clock)
    admin = await admin_headers(app)
    refused = await office.post(f"/api/devices/{device_id}/split", json=body, headers=admin)
    assert refused.status_code == status, refused.text
    assert (await office.get(f"/api/devices/{device_id}/splits", headers=admin)).json() == []
    assert (await heartbeat(office, shared, "PC-COPY"))["new_identity"] is None


async def test_only_a_flagged_device_is_split_and_only_by_an_admin(app, client_from, clock):
    device_id, shared = await enroll(client_from, app)
    office = client_from("10.1.0.5")
    admin = await admin_headers(app)
    unflagged = await office.post(
        f"/api/devices/{device_id}/split", json={"hostname": "PC-GOLDEN"}, headers=admin
    )
    assert unflagged.status_code == 409
    await create_user(app, "reader", role="viewer")
    viewer = {"Authorization": f"Bearer {await create_api_token(app, 'reader')}"}
    for hostname in ("PC-GOLDEN", "PC-COPY", "PC-GOLDEN"):
        clock.advance(seconds=30)
        await beat(office, shared, hostname)
    refused = await office.post(
        f"/api/devices/{device_id}/split", json={"hostname": "PC-COPY"}, headers=viewer
    )
    assert refused.status_code == 403


async def test_a_cancelled_split_hands_nothing_over(app, client_from, clock):
    device_id, shared, office = await flagged_by_hostnames(app, client_from, clock)
    admin = await admin_headers(app)
    await office.post(
        f"/api/devices/{device_id}/split", json={"hostname": "PC-COPY"}, headers=admin
    )
    cancelled = await office.post(f"/api/devices/{device_id}/split/cancel", headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["split_pending"] is False
    assert (await heartbeat(office, shared, "PC-COPY"))["new_identity"] is None
    again = await office.post(f"/api/devices/{device_id}/split/cancel", headers=admin)
    assert again.status_code == 409

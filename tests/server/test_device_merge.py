"""A PC reimaged and enrolled anew under a new id is merged by an admin into its old record:
the old record's history (update events, commands) moves to the new one, which its agent
speaks for; the old record is retired and its console link leads to the new one."""

import pytest

from tests.console.helpers import login, page_token
from tests.support import (
    create_api_token,
    create_secret,
    create_user,
    register_device,
    update_row,
)


async def admin_headers(app) -> dict[str, str]:
    await create_user(app, "root", role="admin")
    return {"Authorization": f"Bearer {await create_api_token(app, 'root')}"}


async def report(client, device, *packages: str) -> None:
    answer = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row(p) for p in packages]},
        headers=device.headers,
    )
    assert answer.status_code == 200, answer.text


async def reimaged_pc(app, client, clock, admin):
    """The old record with history, gone quiet; the same PC enrolled again as a new one."""
    secret = await create_secret(app)
    old = await register_device(client, secret, hostname="PC-ACCT-7")
    await report(client, old, "Git.Git", "7zip.7zip")
    command = await client.post(
        f"/api/devices/{old.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Git.Git"]},
        headers=admin,
    )
    assert command.status_code == 201, command.text
    clock.advance(hours=6)  # wiped and set up again: the old agent is gone
    new = await register_device(client, secret, hostname="PC-ACCT-7")
    await report(client, new, "Mozilla.Firefox")
    return old, new, command.json()["id"]


async def test_the_old_records_history_joins_the_new_one(app, client, clock):
    admin = await admin_headers(app)
    old, new, command_id = await reimaged_pc(app, client, clock, admin)
    old_events = (await client.get(f"/api/devices/{old.device_id}/events", headers=admin)).json()
    old_enrolled = (await client.get(f"/api/devices/{old.device_id}", headers=admin)).json()

    merged = await client.post(
        f"/api/devices/{new.device_id}/merge", json={"device_id": old.device_id}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["enrolled_at"] == old_enrolled["enrolled_at"]

    assert (await client.get(f"/api/devices/{old.device_id}", headers=admin)).status_code == 404
    events = (await client.get(f"/api/devices/{new.device_id}/events", headers=admin)).json()
    assert events["total"] == old_events["total"] + 1  # the new record's own Firefox
    shown = await client.get(f"/api/commands?device_id={new.device_id}", headers=admin)
    assert [c["id"] for c in shown.json()["items"]] == [command_id]
    assert shown.json()["items"][0]["status"] == "cancelled"  # closed when its record retired
    # Its current list is the new report's, and the fleet counts only it.
    updates = (await client.get(f"/api/devices/{new.device_id}/updates", headers=admin)).json()
    assert [u["package_identifier"] for u in updates["items"]] == ["Mozilla.Firefox"]
    fleet = (await client.get("/api/updates", headers=admin)).json()
    assert sorted(u["package_identifier"] for u in fleet["items"]) == ["Mozilla.Firefox"]
    # The agent, which holds the new record's token, notices nothing.
    assert (
        await client.post("/api/agent/heartbeat", json={}, headers=new.headers)
    ).status_code == 200
    assert (
        await client.post("/api/agent/heartbeat", json={}, headers=old.headers)
    ).status_code == 401
    audit = (await client.get("/api/audit", headers=admin)).json()["items"]
    merge = next(e for e in audit if e["action"] == "device.merge")
    assert merge["details"]["merged_device_id"] == old.device_id


async def test_the_old_console_link_leads_to_the_new_record(app, client, clock):
    admin = await admin_headers(app)
    old, new, _ = await reimaged_pc(app, client, clock, admin)
    assert (await login(client, "root")).status_code == 303
    page = (await client.get(f"/devices/{new.device_id}")).text
    assert f'value="{old.device_id}"' in page  # offered as an old record of this PC
    token = await page_token(client, f"/devices/{new.device_id}")
    merged = await client.post(
        f"/devices/{new.device_id}/merge", data={"csrf_token": token, "device_id": old.device_id}
    )
    assert merged.status_code == 303
    assert merged.headers["location"] == f"/devices/{new.device_id}"
    followed = await client.get(f"/devices/{old.device_id}")
    assert followed.status_code == 301
    assert followed.headers["location"] == f"/devices/{new.device_id}"


async def test_a_record_still_speaking_is_not_merged(app, client, clock):
    admin = await admin_headers(app)
    secret = await create_secret(app)
    one = await register_device(client, secret, hostname="PC-1")
    other = await register_device(client, secret, hostname="PC-1")
    refused = await client.post(
        f"/api/devices/{other.device_id}/merge", json={"device_id": one.device_id}, headers=admin
    )
    assert refused.status_code == 409
    assert (await client.get(f"/api/devices/{one.device_id}", headers=admin)).status_code == 200


@pytest.mark.parametrize("target", ["self", "unknown", "merged"])
async def test_bad_merges_are_refused(app, client, clock, target):
    admin = await admin_headers(app)
    old, new, _ = await reimaged_pc(app, client, clock, admin)
    if target == "merged":
        first = await client.post(
            f"/api/devices/{new.device_id}/merge", json={"device_id": old.device_id}, headers=admin
        )
        assert first.status_code == 200
    source = {
        "self": new.device_id,
        "unknown": "9b3a3c0e-3f0e-4d55-8a3a-4f3e2b1c0d9e",
        "merged": old.device_id,
    }[target]
    refused = await client.post(
        f"/api/devices/{new.device_id}/merge", json={"device_id": source}, headers=admin
    )
    assert refused.status_code == (422 if target == "self" else 404), refused.text


async def test_viewers_cannot_merge(app, client, clock):
    admin = await admin_headers(app)
    old, new, _ = await reimaged_pc(app, client, clock, admin)
    await create_user(app, "reader", role="viewer")
    viewer = {"Authorization": f"Bearer {await create_api_token(app, 'reader')}"}
    refused = await client.post(
        f"/api/devices/{new.device_id}/merge", json={"device_id": old.device_id}, headers=viewer
    )
    assert refused.status_code == 403

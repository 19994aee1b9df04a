"""Device tags and groups through the API: tags kept apart by who set them, group rules
evaluated in the database (hostname glob, tags any/all of a kind, OS, enrollment secret, an
explicit list), always current, and every change audited."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.audit.models import AuditEntry
from tests.support import (
    RegisteredDevice,
    api_login,
    app_state,
    create_secret,
    create_user,
    register_device,
)


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    await api_login(client)
    return client


async def enroll(
    client: httpx.AsyncClient, secret: str, hostname: str, **body: object
) -> RegisteredDevice:
    return await register_device(client, secret, hostname=hostname, **body)


async def members(client: httpx.AsyncClient, group_id: int) -> list[str]:
    response = await client.get(f"/api/groups/{group_id}/devices", params={"limit": 500})
    assert response.status_code == 200, response.text
    by_list = await client.get("/api/devices", params={"group_id": group_id, "limit": 500})
    assert by_list.status_code == 200, by_list.text
    hostnames = sorted(d["hostname"] for d in response.json()["items"])
    assert sorted(d["hostname"] for d in by_list.json()["items"]) == hostnames
    assert response.json()["total"] == len(hostnames)
    return hostnames


async def create_group(client: httpx.AsyncClient, **spec: object) -> dict:
    response = await client.post("/api/groups", json={"name": f"g-{uuid.uuid4().hex[:8]}", **spec})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_group_rule_matches_in_the_database(app, admin):
    berlin = await create_secret(app, name="berlin")
    other = await create_secret(app, name="other")
    a = await enroll(admin, berlin, "PC-BER-001", tags=["Finance", "kiosk"])
    await enroll(admin, berlin, "pc-ber-002", os_version="Windows 10 Pro", tags=["finance"])
    await enroll(admin, other, "PC-MUC-001", tags=["kiosk"])
    await enroll(admin, other, "PC_BER_X")  # "_" is a plain character in a glob
    secret_id = 1  # the first secret created

    glob = await create_group(admin, hostname_glob="pc-ber-*")
    assert await members(admin, glob["id"]) == ["PC-BER-001", "pc-ber-002"]
    one_char = await create_group(admin, hostname_glob="PC-???-001")
    assert await members(admin, one_char["id"]) == ["PC-BER-001", "PC-MUC-001"]
    any_tag = await create_group(admin, tags=["kiosk", "finance"], tags_match="any")
    assert await members(admin, any_tag["id"]) == ["PC-BER-001", "PC-MUC-001", "pc-ber-002"]
    all_tags = await create_group(admin, tags=["kiosk", "finance"], tags_match="all")
    assert await members(admin, all_tags["id"]) == ["PC-BER-001"]
    windows_10 = await create_group(admin, os_contains="windows 10")
    assert await members(admin, windows_10["id"]) == ["pc-ber-002"]
    by_secret = await create_group(admin, enrollment_secret_id=secret_id)
    assert await members(admin, by_secret["id"]) == ["PC-BER-001", "pc-ber-002"]
    every = await create_group(
        admin, hostname_glob="PC-*", tags=["kiosk"], enrollment_secret_id=secret_id
    )
    assert await members(admin, every["id"]) == ["PC-BER-001"]
    assert every["devices"] == 1
    assert every["tags"] == ["kiosk"]

    # Always current: a device that starts to match is in at once, and one revoked is out.
    await enroll(admin, berlin, "PC-BER-003")
    assert await members(admin, glob["id"]) == ["PC-BER-001", "PC-BER-003", "pc-ber-002"]
    revoked = await admin.post(f"/api/devices/{a.device_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert await members(admin, glob["id"]) == ["PC-BER-003", "pc-ber-002"]


async def test_agent_tags_and_admin_tags_are_kept_apart(app, admin):
    secret = await create_secret(app)
    claimer = await enroll(admin, secret, "PC-CLAIMS", tags=["pilot"])
    trusted = await enroll(admin, secret, "PC-TRUSTED")
    set_tags = await admin.put(f"/api/devices/{trusted.device_id}/tags", json={"tags": ["Pilot"]})
    assert set_tags.status_code == 200, set_tags.text
    assert set_tags.json()["tags"] == ["pilot"]
    assert set_tags.json()["agent_tags"] == []

    claimed = (await admin.get(f"/api/devices/{claimer.device_id}")).json()
    assert (claimed["tags"], claimed["agent_tags"]) == ([], ["pilot"])

    admins_only = await create_group(admin, tags=["pilot"], tag_source="admin")
    agents_only = await create_group(admin, tags=["pilot"], tag_source="agent")
    either = await create_group(admin, tags=["pilot"])
    assert await members(admin, admins_only["id"]) == ["PC-TRUSTED"]
    assert await members(admin, agents_only["id"]) == ["PC-CLAIMS"]
    assert await members(admin, either["id"]) == ["PC-CLAIMS", "PC-TRUSTED"]

    # An admin's PUT replaces only the admin tags; the agent's report replaces only its own.
    both = await admin.put(f"/api/devices/{claimer.device_id}/tags", json={"tags": ["finance"]})
    assert (both.json()["tags"], both.json()["agent_tags"]) == (["finance"], ["pilot"])
    report = await admin.post(
        "/api/agent/update-report",
        json={"updates": [], "tags": ["berlin"]},
        headers=claimer.headers,
    )
    assert report.status_code == 200, report.text
    after = (await admin.get(f"/api/devices/{claimer.device_id}")).json()
    assert (after["tags"], after["agent_tags"]) == (["finance"], ["berlin"])
    assert await members(admin, agents_only["id"]) == []
    # A report without tags (an older agent) leaves them as they are.
    silent = await admin.post(
        "/api/agent/update-report", json={"updates": []}, headers=claimer.headers
    )
    assert silent.status_code == 200, silent.text
    assert (await admin.get(f"/api/devices/{claimer.device_id}")).json()["agent_tags"] == ["berlin"]


async def test_an_explicit_list_adds_devices_whatever_the_rule(app, admin):
    secret = await create_secret(app)
    listed = await enroll(admin, secret, "LAPTOP-CEO")
    await enroll(admin, secret, "PC-IT-01")
    group = await create_group(admin, hostname_glob="PC-IT-*", device_ids=[listed.device_id])
    assert await members(admin, group["id"]) == ["LAPTOP-CEO", "PC-IT-01"]
    assert group["device_ids"] == [listed.device_id]
    only_listed = await create_group(admin, device_ids=[listed.device_id])
    assert await members(admin, only_listed["id"]) == ["LAPTOP-CEO"]
    nothing = await create_group(admin)
    assert await members(admin, nothing["id"]) == []


async def test_group_changes_are_replaced_whole_and_audited(app, admin):
    secret = await create_secret(app)
    device = await enroll(admin, secret, "PC-1")
    group = await create_group(admin, name="Pilot", tags=["it"], device_ids=[device.device_id])
    changed = await admin.put(
        f"/api/groups/{group['id']}", json={"name": "Pilot ring", "hostname_glob": "PC-*"}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["tags"], body["device_ids"]) == ("Pilot ring", [], [])
    assert await members(admin, group["id"]) == ["PC-1"]
    assert [g["name"] for g in (await admin.get("/api/groups")).json()] == ["Pilot ring"]
    deleted = await admin.delete(f"/api/groups/{group['id']}")
    assert deleted.status_code == 204
    assert (await admin.get(f"/api/groups/{group['id']}")).status_code == 404
    async with app_state(app).database.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert [a for a in actions if a.startswith("group.")] == [
        "group.create",
        "group.update",
        "group.delete",
    ]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "tags": ["not a tag"]}, "tag"),
        ({"name": "x", "tags_match": "most"}, "tags_match"),
        ({"name": "x", "tag_source": "anyone"}, "tag_source"),
        ({"name": "x", "device_ids": [str(uuid.uuid4())]}, "do not exist"),
        ({"name": "x", "enrollment_secret_id": 99}, "enrollment secret"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "tags": [f"t{i}" for i in range(33)]}, "at most 32"),
    ],
)
async def test_a_bad_group_is_refused_and_changes_nothing(app, admin, spec, why):
    await create_secret(app)
    response = await admin.post("/api/groups", json=spec)
    assert response.status_code == 422, response.text
    assert why in response.text
    assert (await admin.get("/api/groups")).json() == []


async def test_group_names_are_unique_whatever_their_case(admin):
    await create_group(admin, name="Berlin")
    again = await admin.post("/api/groups", json={"name": "BERLIN"})
    assert again.status_code == 409, again.text
    assert len((await admin.get("/api/groups")).json()) == 1


async def test_viewers_see_groups_and_cannot_change_them(app, admin, client):
    group = await create_group(admin, name="Pilot")
    await create_user(app, "vera", "viewer password", role="viewer")
    await api_login(client, "vera", "viewer password")
    assert (await client.get("/api/groups")).status_code == 200
    assert (await client.post("/api/groups", json={"name": "Mine"})).status_code == 403
    assert (await client.put(f"/api/groups/{group['id']}", json={"name": "X"})).status_code == 403
    assert (await client.delete(f"/api/groups/{group['id']}")).status_code == 403
    secret = await create_secret(app)
    device = await enroll(client, secret, "PC-1")
    tags = await client.put(f"/api/devices/{device.device_id}/tags", json={"tags": ["x"]})
    assert tags.status_code == 403


async def test_bulk_tags_for_picked_devices_and_for_all_matching(app, admin):
    secret = await create_secret(app)
    devices = [await enroll(admin, secret, f"PC-{n}") for n in range(4)]
    await enroll(admin, secret, "LAPTOP-1")
    picked = await admin.post(
        "/api/devices/tags",
        json={"selection": {"device_ids": [d.device_id for d in devices[:2]]}, "add": ["pilot"]},
    )
    assert picked.status_code == 200, picked.text
    assert picked.json() == {"devices": 2, "changed": 2}
    matching = await admin.post(
        "/api/devices/tags",
        json={"selection": {"matching": {"q": "pc-"}}, "add": ["berlin", "pilot"]},
    )
    assert matching.json() == {"devices": 4, "changed": 4}
    tagged = await admin.get("/api/devices", params={"tag": "pilot"})
    assert tagged.json()["total"] == 4
    removed = await admin.post(
        "/api/devices/tags",
        json={"selection": {"matching": {"tag": "berlin"}}, "remove": ["pilot"]},
    )
    assert removed.json() == {"devices": 4, "changed": 4}
    assert (await admin.get("/api/devices", params={"tag": "pilot"})).json()["total"] == 0
    assert (await admin.get("/api/devices", params={"tag": "berlin"})).json()["total"] == 4

    # Bad selections are refused and change nothing.
    for body in (
        {"selection": {}, "add": ["x"]},
        {"selection": {"device_ids": [str(uuid.uuid4())]}, "add": ["x"]},
        {"selection": {"matching": {}}, "add": []},
        {"selection": {"matching": {}}, "add": ["x"], "remove": ["x"]},
        {"selection": {"matching": {"colour": "red"}}, "add": ["x"]},
    ):
        refused = await admin.post("/api/devices/tags", json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert (await admin.get("/api/devices", params={"tag": "x"})).json()["total"] == 0
    async with app_state(app).database.session() as session:
        bulk = list(
            await session.scalars(
                select(AuditEntry.details).where(AuditEntry.action == "device.tags_bulk")
            )
        )
    assert [entry["selection"] for entry in bulk] == [
        {"device_ids": 2},
        {"matching": {"q": "pc-"}},
        {"matching": {"tag": "berlin"}},
    ]


async def test_a_device_lists_its_groups_and_why(app, admin):
    secret = await create_secret(app)
    device = await enroll(admin, secret, "PC-IT-01", tags=["it"])
    by_rule = await create_group(admin, name="IT", hostname_glob="PC-IT-*")
    listed = await create_group(admin, name="Listed", device_ids=[device.device_id])
    by_tag = await create_group(admin, name="Tagged", tags=["it", "hr"])
    both = await create_group(
        admin, name="Both", tags=["it"], tag_source="agent", device_ids=[device.device_id]
    )
    await create_group(admin, name="Others", hostname_glob="LAPTOP-*")
    await create_group(admin, name="Kiosks", tags=["kiosk"])
    await create_group(admin, name="IT kiosks", tags=["it", "kiosk"], tags_match="all")
    await create_group(admin, name="Set by admins", tags=["it"], tag_source="admin")
    page = await admin.get(f"/devices/{device.device_id}")
    assert page.status_code == 200
    assert f'href="/groups/{by_rule["id"]}" title="By its rule"' in page.text
    assert f'href="/groups/{listed["id"]}" title="Listed by name"' in page.text
    assert f'href="/groups/{by_tag["id"]}" title="By its rule"' in page.text
    assert f'href="/groups/{both["id"]}" title="By its rule and listed by name"' in page.text
    for name in ("Others", "Kiosks", "IT kiosks", "Set by admins"):
        assert f">{name}</a>" not in page.text


async def test_the_console_form_refuses_bad_input_and_keeps_what_was_typed(app, client):
    from tests.console.helpers import login, page_token

    await create_user(app)
    assert (await login(client)).status_code == 303
    token = await page_token(client)
    refused = await client.post(
        "/groups",
        data={"name": "Kiosks", "tags": "kiosk, not a tag", "csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert refused.status_code == 422
    assert "Tags:" in refused.text
    assert 'value="kiosk, not a tag"' in refused.text
    assert (await client.get("/api/groups")).json() == []
    created = await client.post(
        "/groups", data={"name": "Kiosks", "tags": "Kiosk, lobby", "csrf_token": token}
    )
    assert created.status_code == 303
    group = (await client.get("/api/groups")).json()[0]
    assert (group["name"], group["tags"]) == ("Kiosks", ["kiosk", "lobby"])

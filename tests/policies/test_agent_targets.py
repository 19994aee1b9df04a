"""Agent targets with the injected clock: the scheduler moves the fleet's (or a group's)
devices to an agent version, a few at a time, skips agents that cannot update themselves,
halts on failures until the target is set again, and refuses a downgrade unless forced."""

import os

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_protocol import AGENT_PACKAGE
from lunaris_server.audit.models import AuditEntry
from lunaris_server.commands.models import Command
from lunaris_server.policies import scheduler
from tests.policies.helpers import finish
from tests.support import FakeClock, RegisteredDevice, app_state, create_secret, register_device

MSI = bytes.fromhex("d0cf11e0a1b11ae1") + os.urandom(4096)
CAN = ["self_update", "exact_versions"]


async def version(admin: httpx.AsyncClient, name: str) -> None:
    added = await admin.put(f"/api/agent-versions/{name}", content=MSI + name.encode())
    assert added.status_code == 201, added.text


async def devices(
    app: FastAPI, admin: httpx.AsyncClient, specs: list[tuple[str, str, list[str] | None]]
) -> dict[str, RegisteredDevice]:
    """(hostname, agent version, capabilities) each."""
    secret = await create_secret(app)
    found = {}
    for hostname, agent, capabilities in specs:
        found[hostname] = await register_device(
            admin, secret, hostname=hostname, agent_version=agent, capabilities=capabilities
        )
    return found


async def agent_updates(app: FastAPI) -> dict[str, tuple[str, str]]:
    """Each device's agent updates: hostname-free, device id -> (version, status)."""
    async with app_state(app).database.session() as session:
        rows = await session.scalars(select(Command).where(Command.kind == "UPDATE_AGENT"))
        return {c.device_id: ((c.versions or {})[AGENT_PACKAGE], c.status) for c in rows}


async def tick(app: FastAPI, clock: FakeClock) -> int | None:
    clock.advance(minutes=1)
    return await scheduler.tick_once(app_state(app))


async def target(admin: httpx.AsyncClient, path: str = "fleet", **body: object) -> httpx.Response:
    return await admin.put(f"/api/agent-targets/{path}", json=body)


async def test_the_fleet_moves_to_its_target_a_few_at_a_time(app, admin, clock: FakeClock):
    await version(admin, "0.2.0")
    pcs = await devices(
        app,
        admin,
        [
            ("PC-1", "0.1.0", CAN),
            ("PC-2", "0.1.0", CAN),
            ("PC-3", "0.1.0", CAN),
            ("OLD-AGENT", "0.1.0", None),  # cannot update itself: left alone, counted
            ("DONE", "0.2.0", CAN),
        ],
    )
    set_ = await target(admin, version="0.2.0", at_once=2)
    assert set_.status_code == 200, set_.text
    assert set_.json()["scope"] == "fleet"

    assert await tick(app, clock) == 2
    first = await agent_updates(app)
    assert set(first.values()) == {("0.2.0", "queued")}
    standing = (await admin.get("/api/agent-targets")).json()
    assert [
        (t["at_target"], t["waiting"], t["updating"], t["cannot_update_themselves"])
        for t in standing
    ] == [(1, 3, 2, 1)]
    assert await tick(app, clock) == 0  # two open: no room

    updating = [d for d in pcs.values() if d.device_id in first]
    await finish(admin, updating[0], "succeeded")
    assert await tick(app, clock) == 1
    every = await agent_updates(app)
    assert set(every) == {pcs["PC-1"].device_id, pcs["PC-2"].device_id, pcs["PC-3"].device_id}
    async with app_state(app).database.session() as session:
        queued = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "agent_target.queue")
            )
        )
    assert [entry.details["devices"] for entry in queued] == [2, 1]


async def test_failures_halt_a_target_until_it_is_set_again(app, admin, clock: FakeClock):
    await version(admin, "0.2.0")
    pcs = await devices(app, admin, [(f"PC-{n}", "0.1.0", CAN) for n in range(4)])
    assert (await target(admin, version="0.2.0", halt_after_failures=2)).status_code == 200
    assert await tick(app, clock) == 4
    await finish(admin, pcs["PC-0"], "failed")
    await finish(admin, pcs["PC-1"], "failed")
    assert await tick(app, clock) == 0
    [halted] = (await admin.get("/api/agent-targets")).json()
    assert halted["halted_at"] is not None
    assert halted["halt_reason"] == "2 updates to 0.2.0 failed"
    assert halted["failed"] == 2

    # Set again: resumed, failures counted afresh, the failed devices tried again.
    resumed = await target(admin, version="0.2.0", halt_after_failures=2)
    assert resumed.json()["halted_at"] is None
    assert await tick(app, clock) == 2
    # The two that failed have new updates; the two never taken still wait.
    assert {status for _, status in (await agent_updates(app)).values()} == {"queued"}


async def test_a_groups_target_comes_before_the_fleets(app, admin, clock: FakeClock):
    for name in ("0.2.0", "0.3.0"):
        await version(admin, name)
    pcs = await devices(app, admin, [("PILOT-1", "0.1.0", CAN), ("OFFICE-1", "0.1.0", CAN)])
    group = await admin.post("/api/groups", json={"name": "Pilot", "hostname_glob": "PILOT-*"})
    assert (await target(admin, version="0.2.0")).status_code == 200
    assert (await target(admin, f"groups/{group.json()['id']}", version="0.3.0")).status_code == 200
    assert await tick(app, clock) == 2
    updates = await agent_updates(app)
    assert updates[pcs["PILOT-1"].device_id] == ("0.3.0", "queued")
    assert updates[pcs["OFFICE-1"].device_id] == ("0.2.0", "queued")


async def test_a_target_older_than_a_devices_agent_needs_force(app, admin, clock: FakeClock):
    await version(admin, "0.2.0")
    pcs = await devices(app, admin, [("NEWER", "0.3.0", CAN), ("OLDER", "0.1.0", CAN)])
    refused = await target(admin, version="0.2.0")
    assert refused.status_code == 409
    assert "1 device in this scope runs a newer agent (0.3.0)" in refused.json()["error"]["message"]
    assert (await admin.get("/api/agent-targets")).json() == []
    assert await tick(app, clock) == 0

    assert (await target(admin, version="0.2.0", force=True)).status_code == 200
    assert await tick(app, clock) == 2
    assert (await agent_updates(app))[pcs["NEWER"].device_id] == ("0.2.0", "queued")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("fleet", {"version": "9.9.9"}, 404),
        ("groups/999", {"version": "0.2.0"}, 404),
        ("fleet", {"version": "0.2.0", "at_once": 0}, 422),
        ("fleet", {"version": "0.2.0", "unknown": 1}, 422),
        ("fleet", {"version": "../x"}, 422),
        ("groups/0", {"version": "0.2.0"}, 422),
    ],
)
async def test_bad_targets_are_refused_and_change_nothing(app, admin, path, body, status):
    await version(admin, "0.2.0")
    response = await admin.put(f"/api/agent-targets/{path}", json=body)
    assert response.status_code == status, response.text
    assert (await admin.get("/api/agent-targets")).json() == []


async def test_a_removed_target_queues_nothing_more(app, admin, clock: FakeClock):
    await version(admin, "0.2.0")
    await devices(app, admin, [("PC-1", "0.1.0", CAN)])
    assert (await target(admin, version="0.2.0")).status_code == 200
    assert (await admin.delete("/api/agent-targets/fleet")).status_code == 204
    assert (await admin.delete("/api/agent-targets/fleet")).status_code == 404
    assert await tick(app, clock) == 0
    assert await agent_updates(app) == {}

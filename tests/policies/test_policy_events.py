"""Consoles hear of every change of a policy and of its rollouts (POLICY_UPDATED), and of
each change of a command a policy queued (COMMAND_UPDATED with its policy_id), so the
Policies pages follow live."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lunaris_server.policies import scheduler
from lunaris_server.realtime.console_hub import ConsoleClient
from tests.support import (
    api_login,
    app_state,
    create_secret,
    create_user,
    register_device,
    update_row,
)


@pytest.fixture
async def heard(app: FastAPI) -> AsyncIterator[ConsoleClient]:
    hub = app_state(app).realtime.console
    client = hub.connect()
    yield client
    hub.disconnect(client)


async def drain(client: ConsoleClient) -> list[dict[str, Any]]:
    """What the console got (on PostgreSQL over LISTEN/NOTIFY, a moment later)."""
    events = []
    while True:
        try:
            events.append(json.loads(await asyncio.wait_for(client.queue.get(), 0.25)))
        except TimeoutError:
            return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == kind]


async def test_policy_and_rollout_changes_and_its_commands_are_announced(
    app: FastAPI, client: httpx.AsyncClient, heard: ConsoleClient
):
    await create_user(app)
    await api_login(client)
    device = await register_device(client, await create_secret(app))
    report = {"updates": [update_row("Zoom.Zoom", "6.2", "6.3")]}
    assert await client.post("/api/agent/update-report", json=report, headers=device.headers)
    group = (await client.post("/api/groups", json={"name": "All", "hostname_glob": "*"})).json()
    await client.post("/api/package-rules", json={"package": "Zoom.Zoom", "action": "auto"})
    await drain(heard)

    rings = [{"group_id": group["id"]}]
    made = await client.post("/api/policies", json={"name": "P", "rings": rings})
    assert made.status_code == 201, made.text
    policy_id = made.json()["id"]
    assert of_type(await drain(heard), "POLICY_UPDATED") == [{"policy_id": policy_id}]

    assert await scheduler.tick_once(app_state(app)) == 1
    commands = of_type(await drain(heard), "COMMAND_UPDATED")
    assert [c["policy_id"] for c in commands] == [policy_id]

    version = {"package_identifier": "Zoom.Zoom", "source": "winget", "version": "6.3"}
    halted = await client.post(f"/api/policies/{policy_id}/rollouts/halt", json=version)
    assert halted.status_code == 200, halted.text
    assert of_type(await drain(heard), "POLICY_UPDATED") == [{"policy_id": policy_id}]

    # A person's command names no policy.
    other = await register_device(client, await create_secret(app, "second"), hostname="PC-2")
    await client.post("/api/agent/update-report", json=report, headers=other.headers)
    await drain(heard)
    queued = await client.post(
        f"/api/devices/{other.device_id}/commands", json={"kind": "RUN_UPDATES", "packages": None}
    )
    assert queued.status_code == 201, queued.text
    assert [c["policy_id"] for c in of_type(await drain(heard), "COMMAND_UPDATED")] == [None]

    gone = await client.delete(f"/api/policies/{policy_id}")
    assert gone.status_code == 204, gone.text
    assert of_type(await drain(heard), "POLICY_UPDATED") == [{"policy_id": policy_id}]

"""Helpers of the policy tests: a fleet reporting updates, a nightly policy over it, its
commands, a device finishing one, two rings."""

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.commands.models import Command
from tests.console.helpers import login, page_token
from tests.support import RegisteredDevice, app_state, create_secret, register_device, update_row

# Monday 2 November 2026; the nightly window opens at 22:00 in Berlin (21:00 UTC).
MONDAY_EVENING = datetime(2026, 11, 2, 21, 30, tzinfo=UTC)
NIGHTLY = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "duration_minutes": 240}
ROWS = [update_row("Zoom.Zoom", "6.2", "6.3"), update_row("Git.Git", "2.46", "2.47")]


async def fleet(
    app: FastAPI,
    client: httpx.AsyncClient,
    hostnames: list[str],
    rows: list[dict],
    zones: dict[str, str] | None = None,
) -> list[RegisteredDevice]:
    """Devices reporting ``rows`` waiting (each in its time zone of ``zones``, by hostname)."""
    secret = await create_secret(app)
    devices = []
    for hostname in hostnames:
        zone = (zones or {}).get(hostname)
        device = await register_device(client, secret, hostname=hostname, time_zone=zone)
        sent = await client.post(
            "/api/agent/update-report", json={"updates": rows}, headers=device.headers
        )
        assert sent.status_code == 200, sent.text
        devices.append(device)
    return devices


async def setup_policy(client: httpx.AsyncClient, **policy: object) -> dict:
    group = await client.post("/api/groups", json={"name": "Everyone", "hostname_glob": "*"})
    assert group.status_code == 201, group.text
    for rule in ({"package": "Zoom.Zoom", "action": "auto"}, {"package": "Git.Git"}):
        assert (await client.post("/api/package-rules", json=rule)).status_code == 201
    body = {"name": "Nightly", "window": NIGHTLY, "time_zone": "Europe/Berlin"}
    body |= {"rings": [{"group_id": group.json()["id"]}], **policy}
    created = await client.post("/api/policies", json=body)
    assert created.status_code == 201, created.text
    return created.json()


async def commands(app: FastAPI) -> list[Command]:
    async with app_state(app).database.session() as session:
        return list(await session.scalars(select(Command).order_by(Command.device_id)))


async def finish(client: httpx.AsyncClient, device: RegisteredDevice, status: str) -> None:
    """The device takes its waiting command and reports it ``status``."""
    beat = await client.post("/api/agent/heartbeat", json={}, headers=device.headers)
    (command,) = beat.json()["commands"]
    progress = f"/api/agent/commands/{command['command_id']}/progress"
    step = {"sequence": 1, "status": status}
    done = await client.post(progress, json=step, headers=device.headers)
    assert done.status_code == 200, done.text


def spec_of(policy: dict) -> dict:
    """A policy as the API answered it, as a body to change it with."""
    keep = ("name", "description", "priority", "enabled", "window", "time_zone")
    return {k: policy[k] for k in (*keep, "deferral_days", "max_concurrent")}


async def two_rings(admin: httpx.AsyncClient, **gate: object) -> dict:
    pilot = await admin.post("/api/groups", json={"name": "Pilot", "hostname_glob": "PILOT-*"})
    policy = await setup_policy(admin, window=None)
    rings = [{"group_id": pilot.json()["id"], **gate}, policy["rings"][0]]
    body = {**spec_of(policy), "rings": rings}
    changed = await admin.put(f"/api/policies/{policy['id']}", json=body)
    assert changed.status_code == 200, changed.text
    return changed.json()


async def console_with_a_group(admin: httpx.AsyncClient) -> tuple[str, int]:
    """Signs the console client in as the admin and makes a group of every device: the
    page's CSRF token, and the group's id (for a policy's ring)."""
    assert (await login(admin)).status_code == 303
    token = await page_token(admin, "/policies")
    group = await admin.post(
        "/api/groups",
        json={"name": "Everyone", "hostname_glob": "*"},
        headers={"X-CSRF-Token": token},
    )
    assert group.status_code == 201, group.text
    group_id: int = group.json()["id"]
    return token, group_id

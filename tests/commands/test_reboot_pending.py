"""An install that asks for a restart leaves its device "reboot pending" (the device page,
its row and the API say so), never restarted by Lunaris; the agent's next start clears it."""

from datetime import UTC, datetime, timedelta

import httpx

from lunaris_agent.identity import boot_time
from tests.commands.helpers import Tokens, create_command, enrolled, heartbeat, progress, result
from tests.support import FakeClock, RegisteredDevice


async def shown(client: httpx.AsyncClient, tokens: Tokens, device: RegisteredDevice) -> dict:
    response = await client.get(f"/api/devices/{device.device_id}", headers=tokens.viewer)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def beat(client: httpx.AsyncClient, device: RegisteredDevice, booted_at: datetime) -> None:
    body = {"booted_at": booted_at.isoformat()}
    response = await client.post("/api/agent/heartbeat", json=body, headers=device.headers)
    assert response.status_code == 200, response.text


async def test_a_restart_an_install_asked_for_is_pending_until_the_pc_starts_again(
    client, console, tokens, secret, clock: FakeClock
):
    device = await enrolled(client, secret, ["Vendor.NeedsReboot", "Git.Git"])
    booted = clock.now - timedelta(days=2)
    await beat(client, device, booted)
    assert (await shown(client, tokens, device))["reboot_pending_since"] is None

    command = await create_command(client, tokens, device.device_id, ["Vendor.NeedsReboot"])
    assert [c["command_id"] for c in (await heartbeat(client, device))["commands"]] == [
        command["id"]
    ]
    installed = result(
        "Vendor.NeedsReboot", outcome="success_reboot_required", reboot_required=True
    )
    await progress(client, device, command["id"], 1, result=installed)
    await progress(client, device, command["id"], 2, "succeeded")
    pending = (await shown(client, tokens, device))["reboot_pending_since"]
    assert pending is not None
    page = (await console.get(f"/devices/{device.device_id}")).text
    assert "Reboot pending" in page
    assert "never restarts a PC itself" in page
    assert "data-reboot-pending" in (await console.get("/devices")).text

    # Heartbeats from the same boot change nothing; a start after the install clears it.
    clock.advance(minutes=5)
    await beat(client, device, booted)
    assert (await shown(client, tokens, device))["reboot_pending_since"] == pending
    await beat(client, device, clock.now - timedelta(minutes=1))
    cleared = await shown(client, tokens, device)
    assert cleared["reboot_pending_since"] is None
    assert "Reboot pending" not in (await console.get(f"/devices/{device.device_id}")).text


def test_the_agent_tells_when_the_pc_started():
    now = datetime(2026, 12, 7, 12, 0, 30, 123456, tzinfo=UTC)
    started = boot_time(now=now)
    assert started is not None  # Linux: CLOCK_BOOTTIME
    assert started.microsecond == 0
    assert now - timedelta(days=3650) < started <= now

"""UPDATE_AGENT between the agent's self-updater and a real server process: an admin uploads
an agent version (a real MSI, built with wixl), moves a device to it, the agent takes the
command from a heartbeat, downloads the MSI from the server with its token, and the steps it
spools reach the server: an upgrade the next agent finishes, and a download that does not
match what was queued (the file replaced on the server) refused and reported."""

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from lunaris_agent.selfupdate.files import MARKER_FILE
from lunaris_protocol import UpdateAgentCommand
from tests.agent.self_update_support import TARGET, build_msi
from tests.agent.test_self_update import OLD, Device
from tests.support import LiveServer, Seeded, register_body

pytestmark = pytest.mark.e2e


async def prepared(
    server: LiveServer, seeded: Seeded, directory: Path, msi: bytes
) -> tuple[Device, UpdateAgentCommand, httpx.AsyncClient]:
    """The version uploaded, a device that can update itself queued to it, and the
    command its heartbeat hands over; the device's agent set up with its real token."""
    http = httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers)
    try:
        return await _prepare(server, seeded, directory, msi, http)
    except BaseException:
        await http.aclose()
        raise


async def _prepare(
    server: LiveServer, seeded: Seeded, directory: Path, msi: bytes, http: httpx.AsyncClient
) -> tuple[Device, UpdateAgentCommand, httpx.AsyncClient]:
    uploaded = await http.put(f"/api/agent-versions/{TARGET}", content=msi)
    assert uploaded.status_code == 201, uploaded.text
    body = register_body(seeded.enrollment_secret, agent_version=OLD, capabilities=["self_update"])
    registered = await http.post("/api/agent/register", json=body, headers={})
    assert registered.status_code == 200, registered.text
    token = registered.json()["device_token"]
    queued = await http.post(
        f"/api/devices/{body['device_id']}/agent-update", json={"version": TARGET}
    )
    assert queued.status_code == 201, queued.text
    answer = await http.post(
        "/api/agent/heartbeat", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    [command] = answer.json()["commands"]
    device = Device(directory, f"{server.base_url}/api")
    device.config = dataclasses.replace(device.config, device_token=token)
    return device, UpdateAgentCommand.model_validate(command), http


async def send_steps(http: httpx.AsyncClient, device: Device) -> dict[str, Any]:
    """What the agent spooled, sent as its sender does; the command as the server has it."""
    command_id = None
    for command_id, step in device.steps():
        sent = await http.post(
            f"/api/agent/commands/{command_id}/progress",
            content=step.model_dump_json(),
            headers={
                "Authorization": f"Bearer {device.config.device_token}",
                "Content-Type": "application/json",
            },
        )
        assert sent.status_code == 200, sent.text
    shown = await http.get(f"/api/commands/{command_id}")
    result: dict[str, Any] = shown.json()
    return result


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_msi(tmp_path_factory.mktemp("msi")).read_bytes()


async def test_the_server_offers_a_version_and_the_agent_upgrades_to_it(
    start_server, seeded: Seeded, tmp_path: Path, msi: bytes
):
    server: LiveServer = start_server()
    (tmp_path / "pc").mkdir()
    device, command, http = await prepared(server, seeded, tmp_path / "pc", msi)
    async with contextlib.aclosing(http):
        old = device.agent(OLD)
        assert old.offer(command)
        await device.stopped_by_the_installer(old)
        assert device.ran.read_text() == msi[:8].hex()  # the server's bytes reached msiexec
        running = await send_steps(http, device)
        assert (running["status"], running["current_package"]) == ("running", "Lunaris.Agent")

        device.agent(TARGET).report_interrupted()  # the new version starts
        done = await send_steps(http, device)
        assert done["status"] == "succeeded"
        assert [(r["outcome"], r["succeeded"]) for r in done["results"]] == [("success", True)]
        assert not (tmp_path / "pc" / MARKER_FILE).exists()


async def test_a_download_that_is_not_what_was_queued_is_refused_and_reported(
    start_server, seeded: Seeded, tmp_path: Path, msi: bytes
):
    server: LiveServer = start_server()
    (tmp_path / "pc").mkdir()
    device, command, http = await prepared(server, seeded, tmp_path / "pc", msi)
    async with contextlib.aclosing(http):
        # The file changes on the server after the command was queued (a corrupted copy, or
        # someone's replacement): the agent checks against what was queued.
        replaced = server.log_path.parent / "downloads" / f"lunaris-agent-{TARGET}-x64.msi"
        replaced.write_bytes(msi[:-1] + bytes([msi[-1] ^ 0xFF]))
        runner = device.agent(OLD)
        assert runner.offer(command)
        await asyncio.wait_for(runner.run_queued(), 60)
        assert not device.ran.exists()  # never installed
        failed = await send_steps(http, device)
    assert failed["status"] == "failed"
    [result] = failed["results"]
    assert (result["package_identifier"], result["outcome"]) == ("Lunaris.Agent", "hash_mismatch")
    assert command.sha256 in result["message"]

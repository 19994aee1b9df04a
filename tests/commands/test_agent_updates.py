"""Agent versions (the MSIs in the downloads folder) and UPDATE_AGENT, in-process: an admin
uploads a version, a device downloads it with its own token (in ranges), an admin moves a
device's agent to it, the agent takes the command and reports it done."""

import hashlib
import os

import httpx
import pytest
from fastapi import FastAPI

from lunaris_protocol import AGENT_PACKAGE, Capability
from lunaris_server.core.settings import Settings
from tests.commands.helpers import Tokens, heartbeat, progress, result
from tests.support import RegisteredDevice, register_device

OLE = bytes.fromhex("d0cf11e0a1b11ae1")
MSI = OLE + os.urandom(3 * 1024 * 1024)  # larger than the default body limit (1 MB)
SELF_UPDATE = [Capability.SELF_UPDATE.value, Capability.EXACT_VERSIONS.value]


async def upload(
    client: httpx.AsyncClient, tokens: Tokens, version: str, body: bytes = MSI, expect: int = 201
) -> httpx.Response:
    response = await client.put(
        f"/api/agent-versions/{version}",
        content=body,
        headers={**tokens.admin, "Content-Type": "application/x-msi"},
    )
    assert response.status_code == expect, response.text
    return response


async def audit_actions(client: httpx.AsyncClient, tokens: Tokens) -> list[str]:
    response = await client.get("/api/audit", headers=tokens.admin, params={"limit": 500})
    return [entry["action"] for entry in response.json()["items"]]


async def capable(client: httpx.AsyncClient, secret: str, **body: object) -> RegisteredDevice:
    fields: dict[str, object] = {"agent_version": "0.1.0", "capabilities": SELF_UPDATE}
    return await register_device(client, secret, **{**fields, **body})


async def test_an_admin_adds_a_version_and_everyone_sees_it(
    client, tokens, settings: Settings
) -> None:
    added = (await upload(client, tokens, "0.2.0")).json()
    assert added["version"] == "0.2.0"
    assert added["file_name"] == "lunaris-agent-0.2.0-x64.msi"
    assert (added["size_bytes"], added["sha256"]) == (len(MSI), hashlib.sha256(MSI).hexdigest())
    folder = settings.resolved_agent_downloads_dir
    assert (folder / "lunaris-agent-0.2.0-x64.msi").read_bytes() == MSI
    listed = await client.get("/api/agent-versions", headers=tokens.viewer)
    assert [v["version"] for v in listed.json()] == ["0.2.0"]
    assert "agent_version.add" in await audit_actions(client, tokens)
    # The console offers it at once.
    download = await client.get("/downloads/lunaris-agent.msi", headers=tokens.admin)
    assert download.status_code == 200
    assert download.content == MSI


async def test_a_version_never_changes_and_bad_uploads_change_nothing(
    client, tokens, settings: Settings
) -> None:
    await upload(client, tokens, "0.2.0")
    again = await upload(client, tokens, "0.2.0", OLE + b"another build", expect=409)
    assert "remove it first" in again.json()["error"]["message"]
    refused = await upload(client, tokens, "0.3.0", b"MZ not an MSI at all", expect=422)
    assert "not an MSI" in refused.json()["error"]["message"]
    for bad in ("v1", "0.2.0;rm", "%2E%2E", "0" * 65):
        response = await client.put(f"/api/agent-versions/{bad}", content=MSI, headers=tokens.admin)
        assert response.status_code in (404, 422), (bad, response.text)
    viewer = await client.put("/api/agent-versions/0.4.0", content=MSI, headers=tokens.viewer)
    assert viewer.status_code == 403
    folder = settings.resolved_agent_downloads_dir
    assert sorted(p.name for p in folder.iterdir()) == ["lunaris-agent-0.2.0-x64.msi"]
    assert (folder / "lunaris-agent-0.2.0-x64.msi").read_bytes() == MSI
    assert (await audit_actions(client, tokens)).count("agent_version.add") == 1


async def test_removing_a_version_deletes_its_file(client, tokens, settings: Settings) -> None:
    await upload(client, tokens, "0.2.0")
    viewer = await client.delete("/api/agent-versions/0.2.0", headers=tokens.viewer)
    assert viewer.status_code == 403
    removed = await client.delete("/api/agent-versions/0.2.0", headers=tokens.admin)
    assert removed.status_code == 204
    assert not (settings.resolved_agent_downloads_dir / "lunaris-agent-0.2.0-x64.msi").exists()
    assert (
        await client.delete("/api/agent-versions/0.2.0", headers=tokens.admin)
    ).status_code == 404
    assert "agent_version.remove" in await audit_actions(client, tokens)


async def test_a_device_downloads_a_version_with_its_token_in_ranges(
    client, tokens, secret
) -> None:
    await upload(client, tokens, "0.2.0")
    device = await capable(client, secret)
    url = "/api/agent/installers/0.2.0"
    whole = await client.get(url, headers=device.headers)
    assert whole.status_code == 200
    assert whole.content == MSI
    assert whole.headers["accept-ranges"] == "bytes"
    cut = 1_000_000
    rest = await client.get(url, headers={**device.headers, "Range": f"bytes={cut}-"})
    assert rest.status_code == 206
    assert rest.content == MSI[cut:]
    assert rest.headers["content-range"] == f"bytes {cut}-{len(MSI) - 1}/{len(MSI)}"
    # No token, a wrong one, or a browser's API token: no installer.
    for headers in ({}, {"Authorization": "Bearer lnd_wrong"}, tokens.admin):
        assert (await client.get(url, headers=headers)).status_code == 401
    assert (
        await client.get("/api/agent/installers/9.9.9", headers=device.headers)
    ).status_code == 404


async def test_an_admin_moves_a_device_to_a_version_and_its_agent_reports_it_done(
    app: FastAPI, client, tokens, secret
) -> None:
    await upload(client, tokens, "0.2.0")
    device = await capable(client, secret)
    queued = await client.post(
        f"/api/devices/{device.device_id}/agent-update",
        json={"version": "0.2.0"},
        headers=tokens.admin,
    )
    assert queued.status_code == 201, queued.text
    command = queued.json()
    assert (command["kind"], command["versions"]) == ("UPDATE_AGENT", {AGENT_PACKAGE: "0.2.0"})
    again = await client.post(
        f"/api/devices/{device.device_id}/agent-update",
        json={"version": "0.2.0"},
        headers=tokens.admin,
    )
    assert again.status_code == 409
    assert "open already" in again.json()["error"]["message"]

    answer = await heartbeat(client, device)
    assert answer["commands"] == [
        {
            "command_id": command["id"],
            "kind": "UPDATE_AGENT",
            "version": "0.2.0",
            "size_bytes": len(MSI),
            "sha256": hashlib.sha256(MSI).hexdigest(),
            "expires_at": answer["commands"][0]["expires_at"],
        }
    ]
    await progress(client, device, command["id"], 1, package_started=AGENT_PACKAGE)
    await progress(client, device, command["id"], 2, result=result(AGENT_PACKAGE))
    await progress(client, device, command["id"], 3, status="succeeded")
    done = await client.get(f"/api/commands/{command['id']}", headers=tokens.viewer)
    assert done.json()["status"] == "succeeded"
    assert [r["outcome"] for r in done.json()["results"]] == ["success"]
    assert "command.update_agent" in await audit_actions(client, tokens)


@pytest.mark.parametrize(
    ("registered", "body", "refusal"),
    [
        ({"capabilities": ["exact_versions"]}, {"version": "0.2.0"}, "cannot update itself"),
        ({"capabilities": None}, {"version": "0.2.0"}, "cannot update itself"),
        ({"agent_version": "0.3.0"}, {"version": "0.2.0"}, "older than the agent"),
        ({"agent_version": "0.2.0"}, {"version": "0.2.0"}, "already"),
    ],
    ids=["no-capability", "old-agent", "downgrade", "same-version"],
)
async def test_what_an_agent_cannot_or_should_not_take_is_refused(
    client, tokens, secret, registered, body, refusal
) -> None:
    await upload(client, tokens, "0.2.0")
    device = await capable(client, secret, **registered)
    refused = await client.post(
        f"/api/devices/{device.device_id}/agent-update", json=body, headers=tokens.admin
    )
    assert refused.status_code == 409, refused.text
    assert refusal in refused.json()["error"]["message"]
    assert (await heartbeat(client, device))["commands"] == []
    if "capabilities" not in registered:  # a decision, not an impossibility: force takes it
        forced = await client.post(
            f"/api/devices/{device.device_id}/agent-update",
            json={**body, "force": True},
            headers=tokens.admin,
        )
        assert forced.status_code == 201, forced.text


async def test_bad_agent_update_requests_are_refused(client, tokens, secret) -> None:
    await upload(client, tokens, "0.2.0")
    device = await capable(client, secret)
    url = f"/api/devices/{device.device_id}/agent-update"
    for body, status in (
        ({"version": "9.9.9"}, 404),
        ({"version": "0.2.0", "extra": 1}, 422),
        ({"version": "../0.2.0"}, 422),
        ({}, 422),
    ):
        response = await client.post(url, json=body, headers=tokens.admin)
        assert response.status_code == status, (body, response.text)
    viewer = await client.post(url, json={"version": "0.2.0"}, headers=tokens.viewer)
    assert viewer.status_code == 403
    gone = await client.post(
        "/api/devices/00000000-0000-4000-8000-000000000000/agent-update",
        json={"version": "0.2.0"},
        headers=tokens.admin,
    )
    assert gone.status_code == 404
    assert (await heartbeat(client, device))["commands"] == []

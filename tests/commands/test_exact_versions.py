"""Installs are exact: a command carries the version of each package the device reported
available when it was queued, over the heartbeat and the socket alike, so a release published
since cannot overtake it; and the server knows (and says) which agents understand that."""

import httpx
import pytest

from tests.commands.deploying import commands_by_device, deploy, shown
from tests.commands.helpers import Tokens, create_command, enrolled, heartbeat
from tests.support import RegisteredDevice, register_device, update_row

CAPABLE = ["exact_versions", "window_end"]


async def report(client: httpx.AsyncClient, device: RegisteredDevice, rows: list[dict]) -> None:
    response = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert response.status_code == 200, response.text


async def queue(
    client: httpx.AsyncClient, tokens: Tokens, device: RegisteredDevice, packages: list[str] | None
) -> dict:
    return await create_command(client, tokens, device.device_id, packages)


async def test_a_command_installs_the_version_reported_when_it_was_queued(client, tokens, secret):
    device = await enrolled(client, secret, [])
    await report(client, device, [update_row("Git.Git", "2.40", "2.47.1"), update_row("7zip.7zip")])
    command = await queue(client, tokens, device, ["Git.Git", "7zip.7zip"])
    assert command["versions"] == {"Git.Git": "2.47.1", "7zip.7zip": "2.0"}

    # A newer Git is published before the agent picks the command up: it still gets 2.47.1.
    await report(client, device, [update_row("Git.Git", "2.40", "2.48.0"), update_row("7zip.7zip")])
    handed = (await heartbeat(client, device))["commands"]
    assert [(c["packages"], c["versions"]) for c in handed] == [
        (["Git.Git", "7zip.7zip"], {"Git.Git": "2.47.1", "7zip.7zip": "2.0"})
    ]
    assert handed[0]["window_ends_at"] is None  # a person's command: no window
    shown_again = await client.get(f"/api/commands/{command['id']}", headers=tokens.viewer)
    assert shown_again.json()["versions"] == {"Git.Git": "2.47.1", "7zip.7zip": "2.0"}


async def test_what_has_no_single_targetable_version_goes_to_the_newest(client, tokens, secret):
    device = await enrolled(client, secret, [])
    await report(
        client,
        device,
        [
            # Two sources offering two versions: which one is meant cannot be told.
            update_row("Vendor.Twice", "1.0", "2.0", source="winget"),
            update_row("Vendor.Twice", "1.0", "2.1", source="msstore"),
            update_row("Vendor.Exact", "1.0", "3.0"),
        ],
    )
    command = await queue(client, tokens, device, ["Vendor.Twice", "Vendor.Exact"])
    assert command["versions"] == {"Vendor.Exact": "3.0"}
    other = await enrolled(client, secret, ["Vendor.Exact"], hostname="PC-0002")
    everything = await queue(client, tokens, other, None)
    assert everything["versions"] is None  # every update: the agent lists and installs them


async def test_each_device_of_a_deployment_gets_its_own_reported_version(client, tokens, secret):
    old = await enrolled(client, secret, [], hostname="PC-OLD")
    await report(client, old, [update_row("Git.Git", "2.30", "2.46.0")])
    new = await enrolled(client, secret, [], hostname="PC-NEW")
    await report(client, new, [update_row("Git.Git", "2.40", "2.47.1")])
    run = await deploy(client, tokens, {"matching": {}}, packages=["Git.Git"])
    by_device = commands_by_device(await shown(client, tokens, run["deployment"]["id"]))
    assert by_device[old.device_id][0]["versions"] == {"Git.Git": "2.46.0"}
    assert by_device[new.device_id][0]["versions"] == {"Git.Git": "2.47.1"}


async def device_capabilities(client, tokens, device: RegisteredDevice) -> list[str]:
    response = await client.get(f"/api/devices/{device.device_id}", headers=tokens.viewer)
    assert response.status_code == 200, response.text
    capabilities: list[str] = response.json()["capabilities"]
    return capabilities


async def test_the_server_knows_which_agents_install_exact_versions(client, tokens, secret):
    older = await register_device(client, secret, hostname="PC-OLDER")  # no capabilities said
    newer = await register_device(
        client, secret, hostname="PC-NEWER", capabilities=["window_end", "exact_versions"]
    )
    assert await device_capabilities(client, tokens, older) == []
    assert await device_capabilities(client, tokens, newer) == CAPABLE

    # An agent updated in place says more at its next heartbeat; one that says nothing keeps
    # what it had; a name this server does not know yet is kept as said.
    said = {"capabilities": ["exact_versions", "window_end", "future_thing"]}
    response = await client.post("/api/agent/heartbeat", json=said, headers=older.headers)
    assert response.status_code == 200, response.text
    assert await device_capabilities(client, tokens, older) == sorted([*CAPABLE, "future_thing"])
    assert (await heartbeat(client, newer))["commands"] == []
    assert await device_capabilities(client, tokens, newer) == CAPABLE


async def test_the_device_page_says_what_its_agent_installs(console, client, tokens, secret):
    older = await register_device(client, secret, hostname="PC-OLDER")
    newer = await register_device(client, secret, hostname="PC-NEWER", capabilities=CAPABLE)
    old_page = (await console.get(f"/devices/{older.device_id}")).text
    assert "predates exact-version installs" in old_page
    new_page = (await console.get(f"/devices/{newer.device_id}")).text
    assert "the exact version each command names" in new_page
    assert "predates exact-version installs" not in new_page


@pytest.mark.parametrize(
    "capabilities",
    [
        ["x"] * 17,  # more than the protocol allows
        ["a" * 32],  # a name too long
        ["exact versions"],  # not an identifier
        "exact_versions",  # not a list
    ],
)
async def test_capabilities_out_of_bounds_are_refused_and_change_nothing(
    client, tokens, secret, capabilities
):
    device = await register_device(client, secret, capabilities=CAPABLE)
    response = await client.post(
        "/api/agent/heartbeat", json={"capabilities": capabilities}, headers=device.headers
    )
    assert response.status_code == 422, response.text
    assert await device_capabilities(client, tokens, device) == CAPABLE


async def test_the_server_keeps_each_pcs_time_zone(client, tokens, secret):
    device = await register_device(client, secret, time_zone="Europe/Berlin")

    async def zone() -> str | None:
        shown = await client.get(f"/api/devices/{device.device_id}", headers=tokens.viewer)
        value: str | None = shown.json()["time_zone"]
        return value

    assert await zone() == "Europe/Berlin"
    # A laptop flown to New York says so at its next heartbeat; saying nothing keeps it.
    moved = {"time_zone": "America/New_York"}
    assert (
        await client.post("/api/agent/heartbeat", json=moved, headers=device.headers)
    ).is_success
    assert await zone() == "America/New_York"
    assert (await heartbeat(client, device))["commands"] == []
    assert await zone() == "America/New_York"
    for bad in ("Europe/../etc", "Berlin Time", "/Europe", "x" * 65):
        refused = await client.post(
            "/api/agent/heartbeat", json={"time_zone": bad}, headers=device.headers
        )
        assert refused.status_code == 422, bad
    assert await zone() == "America/New_York"

"""The ``partial`` status: a command that installed some of its packages and not others.
Agents say only succeeded or failed; the server derives it from each package's result, so
every agent's commands get it, and answers the agent failed, as it reported it."""

from typing import Any

import pytest

from tests.commands.helpers import enrolled, finish, progress


async def test_five_of_six_packages_is_partial(client, tokens, secret):
    packages = [f"Vendor.App{n}" for n in range(6)]
    device = await enrolled(client, secret, packages)
    created = await client.post(
        f"/api/devices/{device.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers=tokens.admin,
    )
    command_id = created.json()["id"]
    outcomes = [(p, p != "Vendor.App3") for p in packages]
    assert await finish(client, device, command_id, outcomes) == {"status": "failed"}
    shown_command = (await client.get(f"/api/commands/{command_id}", headers=tokens.viewer)).json()
    assert shown_command["status"] == "partial"
    assert sum(r["succeeded"] for r in shown_command["results"]) == 5

    def listed(status: str) -> Any:
        return client.get("/api/commands", params={"status": status}, headers=tokens.viewer)

    assert [c["id"] for c in (await listed("partial")).json()["items"]] == [command_id]
    assert (await listed("failed")).json()["total"] == 0
    assert (await listed("succeeded")).json()["total"] == 0
    # A late step after the end changes nothing.
    again = await progress(client, device, command_id, 99, status="succeeded")
    assert again == {"status": "failed"}
    assert (await listed("partial")).json()["total"] == 1


@pytest.mark.parametrize(
    ("outcomes", "final", "status"),
    [
        ([("A.One", True), ("B.Two", True)], "succeeded", "succeeded"),
        ([("A.One", False), ("B.Two", False)], "failed", "failed"),
        ([], "failed", "failed"),  # failed before any install (winget not found)
        ([], "succeeded", "succeeded"),  # nothing was waiting
        # Stopped after one install (a restart midway): what ran did install.
        ([("A.One", True)], "failed", "partial"),
    ],
)
async def test_the_final_status_comes_from_the_results(
    client, tokens, secret, outcomes, final, status
):
    device = await enrolled(client, secret, ["A.One", "B.Two"])
    created = await client.post(
        f"/api/devices/{device.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers=tokens.admin,
    )
    command_id = created.json()["id"]
    await finish(client, device, command_id, outcomes, status=final)
    shown_command = (await client.get(f"/api/commands/{command_id}", headers=tokens.viewer)).json()
    assert shown_command["status"] == status

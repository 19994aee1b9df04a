"""Double submits: a device that already has an open command (queued, sent or running)
covering a package gets no second one for it, from one click or two processes racing."""

import asyncio
import re

import httpx
import pytest

from tests.commands.helpers import Tokens, enrolled, progress
from tests.console.helpers import login, page_token
from tests.databases import POSTGRES_URL
from tests.support import create_user, register_body, seed_database, update_row

pytestmark = pytest.mark.e2e


async def run(client, tokens: Tokens, device_id: str, packages: list[str] | None):
    return await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": packages},
        headers=tokens.admin,
    )


async def test_an_open_command_covering_a_package_refuses_a_second(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    first = await run(client, tokens, device.device_id, ["Git.Git"])
    assert first.status_code == 201
    again = await run(client, tokens, device.device_id, ["Git.Git"])
    assert again.status_code == 409
    assert again.json()["error"]["details"]["command_id"] == first.json()["id"]
    everything = await run(client, tokens, device.device_id, None)
    assert everything.status_code == 409  # would install Git.Git too
    other = await run(client, tokens, device.device_id, ["7zip.7zip"])
    assert other.status_code == 201
    # Once the first has ended, Git.Git may be run again.
    await client.post("/api/agent/heartbeat", json={}, headers=device.headers)
    await progress(client, device, first.json()["id"], 1, status="failed")
    assert (await run(client, tokens, device.device_id, ["Git.Git"])).status_code == 201


@pytest.mark.parametrize(
    "replicas",
    [1, pytest.param(2, marks=pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL"))],
)
async def test_racing_requests_create_one_command(start_server, database_url, replicas):
    seeded = await seed_database(database_url)
    servers = [start_server() for _ in range(replicas)]
    body = register_body(seeded.enrollment_secret)
    async with httpx.AsyncClient(base_url=servers[0].base_url) as http:
        token = (await http.post("/api/agent/register", json=body)).json()["device_token"]
        report = {"updates": [update_row("Git.Git")]}
        headers = {"Authorization": f"Bearer {token}"}
        assert (
            await http.post("/api/agent/update-report", json=report, headers=headers)
        ).is_success

    async def click(n: int) -> int:
        async with httpx.AsyncClient(base_url=servers[n % replicas].base_url) as http:
            response = await http.post(
                f"/api/devices/{body['device_id']}/commands",
                json={"kind": "RUN_UPDATES", "packages": ["Git.Git"]},
                headers=seeded.auth_headers,
            )
            return response.status_code

    answers = await asyncio.gather(*(click(n) for n in range(12)))
    assert sorted(answers) == [201] + [409] * 11


async def test_a_fleet_wide_run_skips_devices_already_covered(client, tokens, secret):
    busy = await enrolled(client, secret, ["Git.Git"], hostname="PC-BUSY")
    await enrolled(client, secret, ["Git.Git"], hostname="PC-FREE")
    assert (await run(client, tokens, busy.device_id, None)).status_code == 201
    fleet = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    assert fleet.status_code == 201
    assert (fleet.json()["total"], fleet.json()["skipped"]) == (1, 1)
    assert [c["hostname"] for c in fleet.json()["items"]] == ["PC-FREE"]
    again = await client.post("/api/updates/Git.Git/run", headers=tokens.admin)
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"skipped": 2, "skipped_by_rules": 0}


async def test_the_console_says_how_many_devices_a_run_skipped(app, client, tokens, secret):
    busy = await enrolled(client, secret, ["Git.Git"], hostname="PC-BUSY")
    await enrolled(client, secret, ["Git.Git"], hostname="PC-FREE")
    assert (await run(client, tokens, busy.device_id, ["Git.Git"])).status_code == 201
    await create_user(app, "clicker")
    assert (await login(client, "clicker")).status_code == 303
    token = await page_token(client, "/updates")
    ran = await client.post(
        "/updates/run", data={"package": "Git.Git", "confirmed": "yes", "csrf_token": token}
    )
    assert ran.status_code == 303
    deployment_id = re.fullmatch(
        r"/commands\?deployment=([0-9a-f-]{36})&skipped=1", ran.headers["location"]
    )
    assert deployment_id, ran.headers["location"]
    page = (await client.get(ran.headers["location"])).text
    assert "1 device got no new command: it has an open command" in page
    # The commands are one deployment, linked from the page: one queued, one left out.
    assert f'href="/deployments/{deployment_id.group(1)}" id="deployment-link"' in page
    shown = await client.get(f"/api/deployments/{deployment_id.group(1)}")
    assert shown.status_code == 200, shown.text
    assert (shown.json()["skipped_busy"], shown.json()["summary"]["total"]) == (1, 1)

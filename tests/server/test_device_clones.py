"""Two PCs with one identity (a disk image cloned after the agent enrolled) heartbeat in
alternation: the device is flagged on its page, in the list and in the API."""

import httpx
import pytest

from tests.console.helpers import login, page_token
from tests.support import create_api_token, create_secret, create_user, register_body


async def enroll(client_from, app, address: str = "10.1.0.5") -> tuple[str, dict[str, str]]:
    secret = await create_secret(app)
    body = register_body(secret, hostname="PC-GOLDEN")
    registered = await client_from(address).post("/api/agent/register", json=body)
    return body["device_id"], {"Authorization": f"Bearer {registered.json()['device_token']}"}


async def beat(client: httpx.AsyncClient, token: dict[str, str], hostname: str = "PC-GOLDEN"):
    answer = await client.post("/api/agent/heartbeat", json={"hostname": hostname}, headers=token)
    assert answer.status_code == 200, answer.text


async def flag(app, client, device_id: str) -> dict | None:
    await create_user(app, "reader", role="viewer")
    headers = {"Authorization": f"Bearer {await create_api_token(app, 'reader')}"}
    device = (await client.get(f"/api/devices/{device_id}", headers=headers)).json()
    return device["clone_suspected"]


async def test_heartbeats_alternating_between_hostnames_flag_a_clone(app, client_from, clock):
    device_id, token = await enroll(client_from, app)
    office = client_from("10.1.0.5")
    for hostname in ("PC-GOLDEN", "PC-COPY", "PC-GOLDEN"):
        clock.advance(seconds=30)
        await beat(office, token, hostname)
    flagged = await flag(app, office, device_id)
    assert flagged is not None
    assert flagged["evidence"] == "hostnames PC-COPY and PC-GOLDEN"


async def test_heartbeats_alternating_between_addresses_flag_a_clone(app, client_from, clock):
    device_id, token = await enroll(client_from, app)
    for address in ("10.1.0.5", "10.1.0.9", "10.1.0.5"):
        clock.advance(seconds=30)
        await beat(client_from(address), token)
    flagged = await flag(app, client_from("10.1.0.5"), device_id)
    assert flagged is not None
    assert flagged["evidence"] == "addresses 10.1.0.9 and 10.1.0.5"


@pytest.mark.parametrize(
    "addresses",
    [
        ("10.1.0.5", "192.168.7.20", "192.168.7.20", "10.1.0.5"),  # home, then the office again
        ("10.1.0.5", "2001:db8::5", "10.1.0.5", "2001:db8::5"),  # dual stack: one PC
    ],
)
async def test_one_pc_that_moves_is_not_flagged(app, client_from, clock, addresses):
    device_id, token = await enroll(client_from, app)
    for address in addresses:
        clock.advance(hours=2 if address.startswith("192") else 0, seconds=30)
        await beat(client_from(address), token)
    assert await flag(app, client_from("10.1.0.5"), device_id) is None


async def test_the_flag_shows_on_the_pages_and_an_admin_clears_it(app, client_from, clock):
    device_id, token = await enroll(client_from, app)
    office = client_from("10.1.0.5")
    for hostname in ("PC-GOLDEN", "PC-COPY", "PC-GOLDEN"):
        await beat(office, token, hostname)
    await create_user(app)
    assert (await login(office)).status_code == 303
    page = (await office.get(f"/devices/{device_id}")).text
    assert "Two PCs seem to share this identity" in page
    assert "cloned?" in (await office.get("/devices")).text
    token_field = await page_token(office, f"/devices/{device_id}")
    cleared = await office.post(
        f"/devices/{device_id}/clone-flag/clear", data={"csrf_token": token_field}
    )
    assert cleared.status_code == 303
    assert "Two PCs seem to share" not in (await office.get(f"/devices/{device_id}")).text
    await beat(office, token, "PC-COPY")  # the alternation must be seen afresh
    assert "Two PCs seem to share" not in (await office.get(f"/devices/{device_id}")).text

"""Revoking a device closes its agent's push socket, on whichever server process holds it:
a revoked token must not keep a channel that commands are pushed down."""

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.databases import POSTGRES_URL
from tests.support import register_body, seed_database, ws_url

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "replicas",
    [1, pytest.param(2, marks=pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL"))],
)
async def test_revoking_closes_the_agent_socket_on_every_process(
    start_server, database_url, replicas
):
    seeded = await seed_database(database_url)
    servers = [start_server() for _ in range(replicas)]
    holder, revoker = servers[-1], servers[0]
    body = register_body(seeded.enrollment_secret)
    async with httpx.AsyncClient(base_url=revoker.base_url) as http:
        token = (await http.post("/api/agent/register", json=body)).json()["device_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with await connect(
        ws_url(holder.base_url, "/ws/agent"), additional_headers=headers
    ) as ws:
        async with httpx.AsyncClient(base_url=revoker.base_url) as http:
            for _ in range(50):  # the revoking process knows where the socket is
                device = await http.get(
                    f"/api/devices/{body['device_id']}", headers=seeded.auth_headers
                )
                if device.json()["connected"]:
                    break
                await asyncio.sleep(0.1)
            revoked = await http.post(
                f"/api/devices/{body['device_id']}/revoke", headers=seeded.auth_headers
            )
            assert revoked.status_code == 200
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), timeout=5)
        assert ws.close_reason == "device revoked"


async def test_a_replaced_token_loses_its_push_socket(start_server, database_url):
    seeded = await seed_database(database_url)
    server = start_server()
    body = register_body(seeded.enrollment_secret)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        token = (await http.post("/api/agent/register", json=body)).json()["device_token"]
        url, headers = ws_url(server.base_url, "/ws/agent"), {"Authorization": f"Bearer {token}"}
        async with await connect(url, additional_headers=headers) as ws:
            again = await http.post("/api/agent/register", json={**body, "device_token": token})
            assert again.status_code == 200
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=5)
            assert ws.close_reason == "device token replaced"

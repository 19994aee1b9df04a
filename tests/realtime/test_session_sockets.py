"""An ended session's console sockets close, on whichever server process holds them."""

import asyncio
import os

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.console.conftest import login, page_token
from tests.support import LiveServer, Seeded, seed_database, ws_url

POSTGRES_URL = os.environ.get("LUNARIS_TEST_DATABASE_URL")
SESSION_COOKIE = "lunaris_session"


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    return await seed_database(database_url)


async def console_socket(server: LiveServer, cookie: str) -> ClientConnection:
    return await connect(
        ws_url(server.base_url, "/ws/console"),
        additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Origin": server.base_url},
    )


async def closed_with(ws: ClientConnection, timeout_s: float = 5.0) -> int | None:
    """The close code, once the server closes the socket (fails if it stays open)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout_s)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def log_out(server: LiveServer, http: httpx.AsyncClient) -> None:
    token = await page_token(http)
    assert (await http.post(f"{server.base_url}/logout", data={"csrf_token": token})).is_redirect


@pytest.mark.xfail(strict=True, reason="logout leaves the session's console sockets open")
async def test_logout_closes_the_sessions_console_sockets(start_server, seeded):
    server = start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies[SESSION_COOKIE]
        async with await console_socket(server, cookie) as ws:
            await log_out(server, http)
            assert await closed_with(ws) == 4401


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share the announcement through PostgreSQL")
@pytest.mark.xfail(strict=True, reason="logout leaves the session's console sockets open")
async def test_logout_on_one_replica_closes_the_sockets_on_another(start_server, seeded):
    a, b = start_server(), start_server()
    async with httpx.AsyncClient(base_url=b.base_url) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies[SESSION_COOKIE]
        async with await console_socket(a, cookie) as on_a, await console_socket(b, cookie) as on_b:
            await log_out(b, http)
            assert await closed_with(on_a) == 4401
            assert await closed_with(on_b) == 4401

"""An ended session's console sockets close, on whichever server process holds them."""

import asyncio

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.console.helpers import login, page_token
from tests.databases import POSTGRES_URL
from tests.support import LiveServer, run_cli, ws_url

pytestmark = pytest.mark.e2e

SESSION_COOKIE = "lunaris_session"


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


async def test_logout_closes_the_sessions_console_sockets(start_server, seeded):
    server = start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies[SESSION_COOKIE]
        async with await console_socket(server, cookie) as ws:
            await log_out(server, http)
            assert await closed_with(ws) == 4401


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share the announcement through PostgreSQL")
async def test_logout_on_one_replica_closes_the_sockets_on_another(start_server, seeded):
    a, b = start_server(), start_server()
    async with httpx.AsyncClient(base_url=b.base_url) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies[SESSION_COOKIE]
        async with await console_socket(a, cookie) as on_a, await console_socket(b, cookie) as on_b:
            await log_out(b, http)
            assert await closed_with(on_a) == 4401
            assert await closed_with(on_b) == 4401


async def test_disabling_a_user_closes_their_console_sockets(start_server, seeded):
    server = start_server()
    async with (
        httpx.AsyncClient(base_url=server.base_url) as admin,
        httpx.AsyncClient(base_url=server.base_url) as vera,
    ):
        assert (await login(admin)).status_code == 303
        await add_viewer(admin)
        assert (await login(vera, "vera", "viewer password")).status_code == 303
        vera_cookie = vera.cookies[SESSION_COOKIE]
        users = (await admin.get("/settings/users")).text
        vera_id = users.split('data-username="vera"')[1].split("/settings/users/")[1].split("/")[0]
        async with (
            await console_socket(server, vera_cookie) as vera_ws,
            await console_socket(server, admin.cookies[SESSION_COOKIE]) as admin_ws,
            await connect(
                ws_url(server.base_url, "/ws/console"), additional_headers=seeded.auth_headers
            ) as token_ws,
        ):
            token = await page_token(admin)
            disabled = await admin.post(
                f"/settings/users/{vera_id}/disable", data={"csrf_token": token}
            )
            assert disabled.is_redirect
            assert await closed_with(vera_ws) == 4401
            # Other sessions, and sockets opened with an API token, stay open.
            await admin_ws.ping()
            await token_ws.ping()
        with pytest.raises(InvalidStatus):
            await console_socket(server, vera_cookie)


async def test_a_password_set_from_the_cli_closes_the_users_sockets(start_server, seeded):
    # On SQLite the CLI has no bus to the server: the server's periodic check closes them.
    server = start_server(LUNARIS_SESSION_CHECK_INTERVAL_S="0.3")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies[SESSION_COOKIE]
        async with await console_socket(server, cookie) as ws:
            changed = await asyncio.to_thread(
                run_cli,
                server.env,
                "user",
                "set-password",
                "admin",
                "--password-stdin",
                stdin="a new passphrase\n",
            )
            assert changed.returncode == 0, changed.stderr
            assert await closed_with(ws) == 4401
        assert (await http.get("/api/auth/me")).status_code == 401
        assert (await login(http, password="a new passphrase")).status_code == 303


async def add_viewer(admin: httpx.AsyncClient) -> None:
    token = await page_token(admin)
    form = {"csrf_token": token, "username": "vera", "password": "viewer password"}
    assert (await admin.post("/settings/users", data={**form, "role": "viewer"})).is_redirect

"""Live console events from real server processes over real WebSockets."""

import asyncio
import json
import secrets
import socket
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.databases import POSTGRES_URL
from tests.support import LiveServer, Seeded, register_body, update_row, ws_url

pytestmark = pytest.mark.e2e

FAST_LIVENESS = {
    "LUNARIS_HEARTBEAT_INTERVAL_S": "1",
    "LUNARIS_OFFLINE_AFTER_MISSED_HEARTBEATS": "2",
    "LUNARIS_OFFLINE_SWEEP_INTERVAL_S": "0.2",
}


class Agent:
    """A device speaking the agent API, as the real agent does."""

    def __init__(self, server: LiveServer, secret: str, hostname: str = "PC-LIVE") -> None:
        self.server = server
        self.body = register_body(secret, hostname=hostname)
        self.device_id = self.body["device_id"]
        self.token = ""

    async def register(self) -> None:
        """With the current token as proof, when it has one (as the real agent sends it)."""
        body = {**self.body, "device_token": self.token or None}
        async with httpx.AsyncClient(base_url=self.server.base_url) as http:
            response = await http.post("/api/agent/register", json=body)
        assert response.status_code == 200, response.text
        self.token = response.json()["device_token"]

    async def call(self, path: str, body: dict[str, Any], server: LiveServer | None = None) -> None:
        async with httpx.AsyncClient(base_url=(server or self.server).base_url) as http:
            response = await http.post(
                f"/api/agent/{path}", json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
        assert response.status_code == 200, response.text


async def console(server: LiveServer, seeded: Seeded, **kwargs: Any) -> ClientConnection:
    return await connect(
        ws_url(server.base_url, "/ws/console"), additional_headers=seeded.auth_headers, **kwargs
    )


async def next_event(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout_s))


async def assert_silent(ws: ClientConnection, for_s: float = 0.7) -> None:
    try:
        message = await asyncio.wait_for(ws.recv(), for_s)
    except TimeoutError:
        return
    pytest.fail(f"unexpected event: {message}")


async def test_console_socket_refuses_the_unauthenticated(start_server, seeded):
    server = start_server()
    url = ws_url(server.base_url, "/ws/console")
    for headers in ({}, {"Authorization": "Bearer lna_wrong"}, {"Cookie": "lunaris_session=x"}):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 403


async def test_console_socket_takes_the_session_cookie_from_the_same_origin_only(
    start_server, seeded
):
    server = start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        login = {"username": seeded.username, "password": seeded.password}
        assert (await http.post("/api/auth/login", json=login)).status_code == 200
        cookie = f"lunaris_session={http.cookies['lunaris_session']}"
    url = ws_url(server.base_url, "/ws/console")
    own_origin = server.base_url
    async with await connect(url, additional_headers={"Cookie": cookie, "Origin": own_origin}):
        pass
    with pytest.raises(InvalidStatus):
        await connect(url, additional_headers={"Cookie": cookie, "Origin": "https://evil.example"})


async def test_events_follow_what_agents_change_and_nothing_else(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded.enrollment_secret)
    async with await console(server, seeded) as ws:
        await agent.register()
        registered = await next_event(ws)
        assert registered["type"] == "DEVICE_STATUS_UPDATE"
        assert registered["data"]["device_id"] == agent.device_id
        assert registered["data"]["status"] == "online"

        await agent.call("heartbeat", {})
        await assert_silent(ws)  # nothing changed but last_seen

        await agent.call("heartbeat", {"hostname": "PC-RENAMED", "agent_version": "0.2.0"})
        renamed = await next_event(ws)
        assert (renamed["data"]["hostname"], renamed["data"]["agent_version"]) == (
            "PC-RENAMED",
            "0.2.0",
        )

        rows = [
            update_row("Git.Git", "2.31.0", "2.33.0"),
            update_row("7zip.7zip", "19.00", "23.01"),
        ]
        await agent.call("update-report", {"updates": rows})
        changed = await next_event(ws)
        assert changed["type"] == "DEVICE_UPDATES_CHANGED"
        assert changed["data"]["updates_count"] == 2
        assert sorted(changed["data"]["added"]) == ["7zip.7zip", "Git.Git"]

        await agent.call("update-report", {"updates": rows})
        await assert_silent(ws)  # an identical report sends nothing

        await agent.call("update-report", {"updates": [update_row("Git.Git", "2.31.0", "2.34.1")]})
        changed = await next_event(ws)
        assert (changed["data"]["changed"], changed["data"]["removed"]) == (
            ["Git.Git"],
            ["7zip.7zip"],
        )
        assert changed["data"]["updates_count"] == 1


async def test_large_changes_send_counts_not_lists(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded.enrollment_secret)
    await agent.register()
    rows = [update_row(f"Vendor.Package{n:03}.{'x' * 180}") for n in range(300)]
    async with await console(server, seeded) as ws:
        await agent.call("update-report", {"updates": rows})
        event = await next_event(ws)
    assert event["data"]["added_count"] == 300
    assert event["data"]["updates_count"] == 300
    assert (event["data"]["added"], event["data"]["lists_complete"]) == ([], False)


async def test_offline_is_announced_once_and_the_next_heartbeat_brings_it_back(
    start_server, seeded
):
    server = start_server(**FAST_LIVENESS)
    agent = Agent(server, seeded.enrollment_secret)
    async with await console(server, seeded) as ws:
        await agent.register()
        assert (await next_event(ws))["data"]["status"] == "online"
        await agent.call("heartbeat", {})  # answered from memory from now on
        offline = await next_event(ws, timeout_s=6)
        assert (offline["type"], offline["data"]["status"]) == ("DEVICE_STATUS_UPDATE", "offline")
        await assert_silent(ws, for_s=1.5)  # announced exactly once
        await agent.call("heartbeat", {})
        assert (await next_event(ws))["data"]["status"] == "online"


async def test_offline_announcement_survives_a_server_restart(start_server, seeded):
    first = start_server()  # default liveness: the device stays online while this one runs
    agent = Agent(first, seeded.enrollment_secret)
    await agent.register()
    await agent.call("heartbeat", {})  # coalesced, and written when the server stops
    first.stop()
    # The device goes quiet while no server runs; the next server announces it, once. Its
    # window (2 x 10 s) is long enough for the restart and the console to connect, also on
    # a busy machine running tests in parallel.
    slower_liveness = {**FAST_LIVENESS, "LUNARIS_HEARTBEAT_INTERVAL_S": "10"}
    second = start_server(**slower_liveness)
    async with await console(second, seeded) as ws:
        offline = await next_event(ws, timeout_s=40)
        assert (offline["data"]["device_id"], offline["data"]["status"]) == (
            agent.device_id,
            "offline",
        )
    second.stop()
    third = start_server(**slower_liveness)
    async with await console(third, seeded) as ws:
        await assert_silent(ws, for_s=1.5)


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share events through PostgreSQL")
async def test_a_console_on_one_replica_sees_what_reaches_another(start_server, seeded):
    a, b = start_server(), start_server()
    agent = Agent(b, seeded.enrollment_secret)
    async with await console(a, seeded) as ws:
        await agent.register()  # through B
        assert (await next_event(ws))["data"]["device_id"] == agent.device_id
        await agent.call("heartbeat", {"hostname": "SEEN-ON-A"}, server=b)
        assert (await next_event(ws))["data"]["hostname"] == "SEEN-ON-A"
        await agent.call("update-report", {"updates": [update_row("Git.Git")]}, server=b)
        assert (await next_event(ws))["type"] == "DEVICE_UPDATES_CHANGED"


async def test_inventory_changes_are_announced_and_a_known_digest_is_not(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded.enrollment_secret)
    software = [
        {"package_identifier": "Git.Git", "name": "Git", "version": "2.47.1", "source": "winget"},
        {"package_identifier": "Adobe AIR", "name": "Adobe AIR", "version": "32.0"},
    ]
    async with await console(server, seeded) as ws:
        await agent.register()
        assert (await next_event(ws))["type"] == "DEVICE_STATUS_UPDATE"
        await agent.call("inventory", {"software": software})
        first = await next_event(ws)
        assert first["type"] == "DEVICE_SOFTWARE_CHANGED"
        assert (first["data"]["device_id"], first["data"]["apps"]) == (agent.device_id, 2)
        assert first["data"]["added_count"] == 2

        await agent.call("inventory", {"software": list(reversed(software))})
        await assert_silent(ws)  # the same list: nothing to announce

        await agent.call("inventory", {"software": [{**software[0], "version": "2.48.0"}]})
        moved = await next_event(ws)
        assert moved["type"] == "DEVICE_SOFTWARE_CHANGED"
        assert (moved["data"]["changed_count"], moved["data"]["removed_count"]) == (1, 1)


async def device_connected(server: LiveServer, seeded: Seeded, device_id: str) -> bool:
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        return bool((await http.get(f"/api/devices/{device_id}")).json()["connected"])


async def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_agent_socket_needs_a_device_token(start_server, seeded):
    server = start_server()
    url = ws_url(server.base_url, "/ws/agent")
    for headers in ({}, {"Authorization": "Bearer lnd_wrong"}, seeded.auth_headers):
        with pytest.raises(InvalidStatus):
            await connect(url, additional_headers=headers)


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share events through PostgreSQL")
async def test_reregistering_on_one_replica_ends_the_old_token_on_another(start_server, seeded):
    a, b = start_server(), start_server()
    agent = Agent(a, seeded.enrollment_secret)
    await agent.register()
    await agent.call("heartbeat", {})  # A now answers this token from memory
    old_token = agent.token
    agent.server = b
    await agent.register()  # same device id, new token, through B
    async with httpx.AsyncClient(base_url=a.base_url) as http:
        response = await http.post(
            "/api/agent/heartbeat", json={}, headers={"Authorization": f"Bearer {old_token}"}
        )
    assert response.status_code == 401
    await agent.call("heartbeat", {}, server=a)


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share presence through PostgreSQL")
async def test_every_replica_knows_where_an_agent_socket_is(start_server, seeded):
    a, b = start_server(), start_server()
    agent = Agent(a, seeded.enrollment_secret)
    await agent.register()
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with await connect(ws_url(b.base_url, "/ws/agent"), additional_headers=headers):
        await wait_until(lambda: device_connected(a, seeded, agent.device_id))
        assert await device_connected(b, seeded, agent.device_id)
        # A replica that starts later learns of sockets opened before it.
        c = start_server()
        await wait_until(lambda: device_connected(c, seeded, agent.device_id))
    await wait_until(lambda: _not(device_connected(a, seeded, agent.device_id)))


async def _not(awaitable) -> bool:
    return not await awaitable


async def test_a_client_that_never_reads_does_not_hold_up_another(start_server, seeded):
    server = start_server(LUNARIS_CONSOLE_QUEUE_SIZE="8")
    agents = [Agent(server, seeded.enrollment_secret, hostname=f"PC-{n}") for n in range(4)]
    for agent in agents:
        await agent.register()
    # A tiny receive window and a one-message client buffer: this console stops reading.
    stuck_socket = socket.socket()
    stuck_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connecting
    stuck_socket.connect(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
    stuck = await connect(
        ws_url(server.base_url, "/ws/console"),
        additional_headers=seeded.auth_headers,
        sock=stuck_socket,
        max_queue=1,
    )

    async def report(http: httpx.AsyncClient, agent: Agent) -> None:
        # Seven long random ids (WebSocket compression cannot shrink them): a ~3.7 kB event.
        rows = [update_row(f"Vendor.{secrets.token_hex(120)}") for _ in range(7)]
        response = await http.post(
            "/api/agent/update-report",
            json={"updates": rows},
            headers={"Authorization": f"Bearer {agent.token}"},
        )
        assert response.status_code == 200

    sent = 0
    async with (
        await console(server, seeded) as healthy,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        # Until the kernel's buffers towards the stuck client are full and its queue overflows.
        while sent < 4000:
            await asyncio.gather(*(report(http, agent) for agent in agents))
            sent += len(agents)
            for _ in agents:  # the healthy console is never held up by the stuck one
                assert (await next_event(healthy, timeout_s=2))["type"] == "DEVICE_UPDATES_CHANGED"
            if sent % 20 == 0:
                stats = (await http.get("/api/realtime/stats", headers=seeded.auth_headers)).json()
                if stats["console_resyncs"] >= 1:
                    break
        stats = (await http.get("/api/realtime/stats", headers=seeded.auth_headers)).json()
    assert stats["console_resyncs"] >= 1, f"no overflow after {sent} events"
    await stuck.close()


async def test_closed_consoles_and_agent_sockets_are_cleaned_up(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded.enrollment_secret)
    await agent.register()

    async def stats() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
            return (await http.get("/api/realtime/stats")).json()

    agent_headers = {"Authorization": f"Bearer {agent.token}"}
    async with (
        await console(server, seeded),
        await console(server, seeded),
        await connect(ws_url(server.base_url, "/ws/agent"), additional_headers=agent_headers),
    ):
        await wait_until(lambda: _has(stats(), console_clients=2, agent_sockets=1))
    await wait_until(lambda: _has(stats(), console_clients=0, agent_sockets=0))
    assert not await device_connected(server, seeded, agent.device_id)


async def _has(stats_call, **expected: int) -> bool:
    stats = await stats_call
    return all(stats[name] == value for name, value in expected.items())

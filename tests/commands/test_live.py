"""Remote actions on real server processes: pushed over a real ``/ws/agent`` socket at once
(also from another replica, on PostgreSQL), handed over when the socket opens or in the next
heartbeat when it is closed, and followed live on ``/ws/console``."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from lunaris_protocol import RunUpdatesMessage
from tests.databases import POSTGRES_URL
from tests.support import LiveServer, Seeded, register_body, update_row, ws_url

pytestmark = pytest.mark.e2e

# Only the bus can tell a process about a command created elsewhere: no periodic re-read.
NO_RELOAD = {"LUNARIS_COMMAND_SWEEP_INTERVAL_S": "3600"}


class Agent:
    """A device speaking the agent API as the real agent does."""

    def __init__(self, server: LiveServer, seeded: Seeded, hostname: str = "PC-LIVE") -> None:
        self.server = server
        self.body = register_body(seeded.enrollment_secret, hostname=hostname)
        self.device_id: str = self.body["device_id"]
        self.headers: dict[str, str] = {}

    async def enroll(self, packages: list[str]) -> None:
        async with httpx.AsyncClient(base_url=self.server.base_url) as http:
            response = await http.post("/api/agent/register", json=self.body)
            assert response.status_code == 200, response.text
            self.headers = {"Authorization": f"Bearer {response.json()['device_token']}"}
            report = {"updates": [update_row(p) for p in packages]}
            response = await http.post(
                "/api/agent/update-report", json=report, headers=self.headers
            )
            assert response.status_code == 200, response.text

    async def heartbeat(self, server: LiveServer | None = None) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=(server or self.server).base_url) as http:
            response = await http.post("/api/agent/heartbeat", json={}, headers=self.headers)
        assert response.status_code == 200, response.text
        commands: list[dict[str, Any]] = response.json()["commands"]
        return commands

    async def progress(self, command_id: str, sequence: int, **step: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.server.base_url) as http:
            response = await http.post(
                f"/api/agent/commands/{command_id}/progress",
                json={"sequence": sequence, "status": "running", **step},
                headers=self.headers,
            )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def socket(self, server: LiveServer | None = None) -> ClientConnection:
        url = ws_url((server or self.server).base_url, "/ws/agent")
        return await connect(url, additional_headers=self.headers)


async def api(
    server: LiveServer, seeded: Seeded, method: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        response = await http.request(method, path, **kwargs)
    assert response.is_success, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def run_updates(
    server: LiveServer, seeded: Seeded, device_id: str, packages: list[str] | None
) -> str:
    created = await api(
        server,
        seeded,
        "POST",
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": packages},
    )
    command_id: str = created["id"]
    return command_id


async def status_of(server: LiveServer, seeded: Seeded, command_id: str) -> str:
    status: str = (await api(server, seeded, "GET", f"/api/commands/{command_id}"))["status"]
    return status


async def pushed(ws: ClientConnection, timeout_s: float = 5.0) -> RunUpdatesMessage:
    return RunUpdatesMessage.model_validate_json(await asyncio.wait_for(ws.recv(), timeout_s))


async def eventually(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def connected(server: LiveServer, seeded: Seeded, device_id: str) -> bool:
    return bool((await api(server, seeded, "GET", f"/api/devices/{device_id}"))["connected"])


async def command_events(ws: ClientConnection, count: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    while len(seen) < count:
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if event["type"] == "COMMAND_UPDATED":
            seen.append((event["data"]["command_id"], event["data"]["status"]))
    return seen


async def test_a_command_is_pushed_at_once_over_the_agents_socket(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded)
    await agent.enroll(["Git.Git", "7zip.7zip"])
    async with await agent.socket() as ws:
        await eventually(lambda: connected(server, seeded, agent.device_id))
        command_id = await run_updates(server, seeded, agent.device_id, ["Git.Git"])
        message = await pushed(ws)
    assert str(message.data.command_id) == command_id
    assert message.data.packages == ["Git.Git"]

    async def is_sent() -> bool:
        return await status_of(server, seeded, command_id) == "sent"

    await eventually(is_sent)


async def test_what_was_queued_while_the_socket_was_closed_arrives_when_it_opens(
    start_server, seeded
):
    server = start_server()
    agent = Agent(server, seeded)
    await agent.enroll(["Git.Git"])
    command_id = await run_updates(server, seeded, agent.device_id, None)
    assert await status_of(server, seeded, command_id) == "queued"
    async with await agent.socket() as ws:
        message = await pushed(ws)
    assert str(message.data.command_id) == command_id
    assert message.data.packages is None


async def test_an_agent_without_a_socket_gets_it_in_its_next_heartbeat(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded)
    await agent.enroll(["Git.Git"])
    assert await agent.heartbeat() == []
    command_id = await run_updates(server, seeded, agent.device_id, ["Git.Git"])
    assert await status_of(server, seeded, command_id) == "queued"  # nobody to push it to
    handed = await agent.heartbeat()
    assert [c["command_id"] for c in handed] == [command_id]
    assert await status_of(server, seeded, command_id) == "sent"
    # Until the agent says it started, every heartbeat hands it over again.
    assert [c["command_id"] for c in await agent.heartbeat()] == [command_id]
    await agent.progress(command_id, 1, package_started="Git.Git")
    assert await agent.heartbeat() == []


async def test_a_console_follows_a_command_live(start_server, seeded):
    server = start_server()
    agent = Agent(server, seeded)
    await agent.enroll(["Git.Git"])
    console_url = ws_url(server.base_url, "/ws/console")
    async with await connect(console_url, additional_headers=seeded.auth_headers) as console:
        command_id = await run_updates(server, seeded, agent.device_id, ["Git.Git"])
        assert await command_events(console, 1) == [(command_id, "queued")]
        await agent.heartbeat()
        assert await command_events(console, 1) == [(command_id, "sent")]
        await agent.progress(command_id, 1, package_started="Git.Git")
        result = {"package_identifier": "Git.Git", "outcome": "success", "succeeded": True}
        await agent.progress(command_id, 2, result=result)
        await agent.progress(command_id, 3, status="succeeded")
        assert await command_events(console, 3) == [
            (command_id, "running"),
            (command_id, "running"),
            (command_id, "succeeded"),
        ]


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share commands through PostgreSQL")
async def test_a_command_created_on_one_replica_reaches_an_agent_on_another(start_server, seeded):
    a, b = start_server(**NO_RELOAD), start_server(**NO_RELOAD)
    pushed_to = Agent(a, seeded, hostname="PC-SOCKET")
    polling = Agent(a, seeded, hostname="PC-HEARTBEAT")
    # Two packages each: a device gets no second open command for one package, and the
    # fleet-wide run of Git.Git at the end comes after commands for 7zip.7zip.
    await pushed_to.enroll(["Git.Git", "7zip.7zip"])
    await polling.enroll(["Git.Git", "7zip.7zip"])
    assert await polling.heartbeat(server=b) == []  # B has nothing for it, and knows so
    async with await pushed_to.socket(server=b) as ws:
        await eventually(lambda: connected(a, seeded, pushed_to.device_id))
        command_id = await run_updates(a, seeded, pushed_to.device_id, ["7zip.7zip"])
        message = await pushed(ws)
        assert str(message.data.command_id) == command_id

        async def is_sent() -> bool:
            return await status_of(a, seeded, command_id) == "sent"

        await eventually(is_sent)

    # Created on A for a device whose agent only heartbeats, on B: B learnt it over the bus.
    other = await run_updates(a, seeded, polling.device_id, ["7zip.7zip"])

    async def handed_over_by_b() -> bool:
        return [c["command_id"] for c in await polling.heartbeat(server=b)] == [other]

    await eventually(handed_over_by_b, timeout_s=3)

    # Run on every device waiting for a package: pushed through B, handed over by B.
    async with await pushed_to.socket(server=b) as ws:
        await eventually(lambda: connected(a, seeded, pushed_to.device_id))
        run = await api(a, seeded, "POST", "/api/updates/Git.Git/run")
        assert run["total"] == 2
        mine = {c["id"] for c in run["items"] if c["device_id"] == pushed_to.device_id}
        received: set[str] = set()
        while not mine <= received:
            received.add(str((await pushed(ws)).data.command_id))

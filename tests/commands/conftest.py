"""Helpers for the remote-action tests: an admin's and a viewer's API tokens, devices that
report updates through the agent API, progress steps as the agent sends them, the
console events the process announces, and a real server process with a real agent process
(heartbeating every second) for the end-to-end tests."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from lunaris_server.realtime.console_hub import ConsoleClient
from tests.agent_process import AgentProcess
from tests.support import (
    LiveServer,
    RegisteredDevice,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_device,
    start_live_server,
    update_row,
)


@dataclass(frozen=True)
class Tokens:
    admin: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
async def tokens(app: FastAPI) -> Tokens:
    await create_user(app, "admin")
    await create_user(app, "viewer", "viewer password", role="viewer")
    admin = await create_api_token(app, "admin")
    viewer = await create_api_token(app, "viewer")
    return Tokens(
        admin={"Authorization": f"Bearer {admin}"}, viewer={"Authorization": f"Bearer {viewer}"}
    )


@pytest.fixture
async def secret(app: FastAPI) -> str:
    return await create_secret(app)


async def enrolled(
    client: httpx.AsyncClient, secret: str, packages: list[str], hostname: str = "PC-0001"
) -> RegisteredDevice:
    """A device that reported these packages as waiting."""
    device = await register_device(client, secret, hostname=hostname)
    response = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row(p) for p in packages]},
        headers=device.headers,
    )
    assert response.status_code == 200, response.text
    return device


async def heartbeat(client: httpx.AsyncClient, device: RegisteredDevice) -> dict[str, Any]:
    response = await client.post("/api/agent/heartbeat", json={}, headers=device.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def progress(
    client: httpx.AsyncClient,
    device: RegisteredDevice,
    command_id: str,
    sequence: int,
    status: str = "running",
    expect: int = 200,
    **step: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/agent/commands/{command_id}/progress",
        json={"sequence": sequence, "status": status, **step},
        headers=device.headers,
    )
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def result(package: str, succeeded: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "package_identifier": package,
        "outcome": "success" if succeeded else "installer_failed",
        "succeeded": succeeded,
        "duration_s": 12.5,
        **extra,
    }


class Events:
    """The console events this process broadcasts, as a connected console receives them.
    On PostgreSQL they come back over LISTEN/NOTIFY a moment after the request answered, so
    reading waits until none has arrived for a while."""

    QUIET_S = 0.25

    def __init__(self, client: ConsoleClient) -> None:
        self.client = client

    async def drain(self) -> list[dict[str, Any]]:
        events = []
        while True:
            try:
                text = await asyncio.wait_for(self.client.queue.get(), self.QUIET_S)
            except TimeoutError:
                return events
            events.append(json.loads(text))

    async def commands(self) -> list[tuple[str, str]]:
        """(command id, status) of each COMMAND_UPDATED since the last read."""
        return [
            (e["data"]["command_id"], e["data"]["status"])
            for e in await self.drain()
            if e["type"] == "COMMAND_UPDATED"
        ]


@pytest.fixture
async def events(app: FastAPI) -> AsyncIterator[Events]:
    hub = app_state(app).realtime.console
    client = hub.connect()
    yield Events(client)
    hub.disconnect(client)


class Statements:
    """SQL the app sends, to check which requests read the commands table."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if f" {table}" in s or f'"{table}"' in s]


@pytest.fixture
async def statements(app: FastAPI) -> AsyncIterator[Statements]:
    engine = app_state(app).database.engine.sync_engine
    recorder = Statements()
    event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(engine, "before_cursor_execute", recorder)


async def settle() -> None:
    """Lets background work the app spawned (pushes) run."""
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_live_server(
        database_url=database_url,
        data_dir=tmp_path / "server",
        LUNARIS_HEARTBEAT_INTERVAL_S="1",
    )
    yield live
    live.stop()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path / "agent" / "config.json", tmp_path)
    yield process
    process.kill()

"""Helpers for the remote-action tests: API tokens, devices that report updates through the
agent API, progress steps as the agent sends them, the console events the process announces,
and the SQL it sends."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from lunaris_server.realtime.console_hub import ConsoleClient
from tests.support import RegisteredDevice, register_device, update_row


@dataclass(frozen=True)
class Tokens:
    admin: dict[str, str]
    viewer: dict[str, str]


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


async def create_command(
    client: httpx.AsyncClient, tokens: Tokens, device_id: str, packages: list[str] | None = None
) -> dict[str, Any]:
    """An admin queues RUN_UPDATES for one device through the API; its JSON."""
    response = await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": packages},
        headers=tokens.admin,
    )
    assert response.status_code == 201, response.text
    command: dict[str, Any] = response.json()
    return command


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


class Statements:
    """SQL the app sends, to check which requests read the commands table."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if f" {table}" in s or f'"{table}"' in s]


async def finish(
    client: httpx.AsyncClient,
    device: RegisteredDevice,
    command_id: str,
    outcomes: list[tuple[str, bool]],
    status: str | None = None,
) -> dict[str, Any]:
    """The agent's steps: each package started and ended, then the last step (failed when a
    package failed, as the agent says it)."""
    sequence = 0
    for package, succeeded in outcomes:
        sequence += 1
        await progress(client, device, command_id, sequence, package_started=package)
        sequence += 1
        await progress(client, device, command_id, sequence, result=result(package, succeeded))
    final = status or ("succeeded" if all(ok for _, ok in outcomes) else "failed")
    return await progress(client, device, command_id, sequence + 1, status=final)

"""The agent's push channel against a real WebSocket server: it authenticates with the device
token, hands RUN_UPDATES on, ignores what it does not understand, and reconnects."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.server import ServerConnection, serve

from lunaris_agent.push import PushChannel, socket_url
from lunaris_protocol import RunUpdatesCommand, RunUpdatesMessage


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("http://127.0.0.1:8000/api", "ws://127.0.0.1:8000/ws/agent"),
        ("https://lunaris.example.com/api/", "wss://lunaris.example.com/ws/agent"),
        ("https://example.com/it/lunaris/api", "wss://example.com/it/lunaris/ws/agent"),
    ],
)
def test_the_socket_lives_beside_the_api(api_url, expected):
    assert socket_url(api_url) == expected


def run_updates(packages: list[str] | None) -> RunUpdatesCommand:
    return RunUpdatesCommand(
        command_id=uuid.uuid4(),
        packages=packages,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_commands_arrive_and_the_channel_reconnects():
    sent = [run_updates(["Git.Git"]), run_updates(None)]
    seen_tokens: list[str | None] = []

    async def handler(connection: ServerConnection) -> None:
        seen_tokens.append(connection.request.headers.get("Authorization"))
        command = sent[len(seen_tokens) - 1]
        await connection.send('{"type": "SOMETHING_NEW", "data": {}}')
        await connection.send(RunUpdatesMessage(data=command).model_dump_json())
        await connection.close()  # the server restarts, say

    received: list[RunUpdatesCommand] = []
    both = asyncio.Event()

    def on_command(command: RunUpdatesCommand) -> None:
        received.append(command)
        if len(received) == 2:
            both.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        channel = PushChannel(
            f"http://127.0.0.1:{port}/api", token=lambda: "lnd_token", on_command=on_command
        )
        task = asyncio.create_task(channel.run_forever())
        try:
            await asyncio.wait_for(both.wait(), 15)
        finally:
            task.cancel()
    assert received == sent
    assert seen_tokens == ["Bearer lnd_token", "Bearer lnd_token"]


async def test_without_a_token_it_waits_instead_of_connecting():
    connections = 0

    async def handler(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        channel = PushChannel(
            f"http://127.0.0.1:{port}/api", token=lambda: None, on_command=lambda _: None
        )
        task = asyncio.create_task(channel.run_forever())
        await asyncio.sleep(0.5)
        task.cancel()
    assert connections == 0


class RecordingJitter(random.Random):
    """Records each back-off step asked for and waits almost nothing."""

    def __init__(self) -> None:
        super().__init__(0)
        self.steps: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.steps.append(b)
        return 0.01


async def test_a_connection_that_dies_after_opening_restarts_the_back_off():
    connections = 0
    enough = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 5:
            enough.set()
        connection.transport.abort()  # the server process is killed: no close frame

    jitter = RecordingJitter()
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        channel = PushChannel(
            f"http://127.0.0.1:{port}/api",
            token=lambda: "lnd_token",
            on_command=lambda _: None,
            rng=jitter,
        )
        task = asyncio.create_task(channel.run_forever())
        try:
            await asyncio.wait_for(enough.wait(), 15)
        finally:
            task.cancel()
    assert jitter.steps[:4] == [2.0, 2.0, 2.0, 2.0]

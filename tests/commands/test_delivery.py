"""Handing commands over in heartbeat answers without making the plain heartbeat dearer: which
requests read the commands table, the fast path and the route alike, and the per-process set
of devices with commands waiting."""

import asyncio
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from lunaris_server.app import create_app
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.core.clock import utc_now
from lunaris_server.core.settings import Settings
from lunaris_server.db import Database
from lunaris_server.realtime.bus import MemoryBus
from lunaris_server.realtime.service import Realtime
from lunaris_server.web.state import AppState
from lunaris_server.web.throttle import LoginThrottle, RegistrationThrottle
from tests.commands.helpers import Statements, Tokens, create_command, enrolled, heartbeat, progress
from tests.support import RecordingApp, app_state

HEARTBEAT = "/api/agent/heartbeat"


async def create(client: httpx.AsyncClient, tokens: Tokens, device_id: str) -> str:
    command_id: str = (await create_command(client, tokens, device_id))["id"]
    return command_id


async def wait_loaded(app: FastAPI) -> None:
    delivery = app_state(app).part(CommandDelivery)
    for _ in range(200):
        if delivery.loaded:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the set of devices with commands waiting was never loaded")


async def test_a_plain_heartbeat_never_reads_the_commands_table(
    app, client, tokens, secret, statements: Statements
):
    await wait_loaded(app)
    idle = await enrolled(client, secret, ["Git.Git"], hostname="PC-IDLE")
    busy = await enrolled(client, secret, ["Git.Git"], hostname="PC-BUSY")
    await heartbeat(client, idle)  # fills the device cache
    statements.seen.clear()
    for _ in range(3):
        assert (await heartbeat(client, idle))["commands"] == []
    assert statements.touching("commands") == []

    # Another device has a command waiting: this one's heartbeats still read nothing.
    await create(client, tokens, busy.device_id)
    await heartbeat(client, idle)
    statements.seen.clear()
    await heartbeat(client, idle)
    assert statements.touching("commands") == []

    # The device with one does; once the agent started it, one more read and then none.
    assert len((await heartbeat(client, busy))["commands"]) == 1
    assert statements.touching("commands")
    command_id = (await client.get("/api/commands", headers=tokens.admin)).json()["items"][0]["id"]
    await progress(client, busy, command_id, 1)
    assert (await heartbeat(client, busy))["commands"] == []
    statements.seen.clear()
    assert (await heartbeat(client, busy))["commands"] == []
    assert statements.touching("commands") == []


async def test_the_fast_path_hands_commands_over_without_the_framework(app, client, tokens, secret):
    from lunaris_server.agent_api.heartbeat import HeartbeatFastPath

    device = await enrolled(client, secret, ["Git.Git"])
    recorder = RecordingApp(app)
    fast_path = HeartbeatFastPath(recorder, max_body_bytes=1024)

    async def with_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await fast_path(scope, receive, send)

    transport = httpx.ASGITransport(app=with_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as fast:
        command_id = await create(client, tokens, device.device_id)
        # A heartbeat with news (a new agent version) evicts the device from the cache: the
        # device id comes from the database then.
        for body in ({}, {"agent_version": "9.9.9"}, None):
            response = await fast.post(HEARTBEAT, json=body, headers=device.headers)
            assert response.status_code == 200
            assert [c["command_id"] for c in response.json()["commands"]] == [command_id]
            assert "x-content-type-options" not in response.headers  # no framework middleware
    assert recorder.paths == []


async def test_the_route_hands_commands_over_too(app, client, tokens, secret, settings, clock):
    """What the fast path hands on (anything unusual) reaches the route, which answers the
    same way: here another process's framework called directly, so the fast path in front of
    it (``LunarisApp.front``) never sees the request."""
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = await create(client, tokens, device.device_id)
    second = create_app(settings, clock=clock)
    async with LifespanManager(second):
        transport = httpx.ASGITransport(app=second.framework)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post(HEARTBEAT, json={}, headers=device.headers)
            assert response.status_code == 200
            # The framework's own middleware ran: the fast path answers without these.
            assert response.headers.get("x-content-type-options") == "nosniff"
    assert [c["command_id"] for c in response.json()["commands"]] == [command_id]
    status = (await client.get(f"/api/commands/{command_id}", headers=tokens.admin)).json()
    assert status["status"] == "sent"


async def test_commands_waiting_when_a_process_starts_are_known_to_it(
    app, client, tokens, secret, settings, clock
):
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = await create(client, tokens, device.device_id)
    # Another process on the same database, started afterwards (or restarted).
    second = create_app(settings, clock=clock)
    async with LifespanManager(second):
        await wait_loaded(second)
        assert app_state(second).part(CommandDelivery).may_have(device.device_id)
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            handed = await heartbeat(http, device)
    assert [c["command_id"] for c in handed["commands"]] == [command_id]


def process_state(database: Database, realtime: Realtime) -> AppState:
    """A process's state around a delivery made by hand, as the app makes it."""
    return AppState(
        settings=Settings(database_url=database.url),
        database=database,
        realtime=realtime,
        login_throttle=LoginThrottle(failures_per_minute=30),
        registration_throttle=RegistrationThrottle(per_secret_per_minute=600),
        clock=utc_now,
    )


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


async def test_a_device_leaves_the_set_only_when_nothing_was_queued_since_the_read(
    database_url,
):
    database = Database(database_url)
    realtime = Realtime(MemoryBus())
    ticks = Ticks()
    delivery = CommandDelivery(process_state(database, realtime), monotonic=ticks)
    realtime.bus.subscribe(delivery.on_bus_message)
    try:
        assert delivery.may_have("dev-1")  # not loaded yet: anything may be waiting
        await delivery.reload()
        assert delivery.loaded
        assert not delivery.may_have("dev-1")

        delivery.mark(["dev-1"])
        read_at = ticks()
        delivery._settle("dev-1", read_at=read_at)  # a read that began after the mark
        assert not delivery.may_have("dev-1")

        read_at = ticks()
        delivery.mark(["dev-1"])  # queued while the read was under way
        delivery._settle("dev-1", read_at=read_at)
        assert delivery.may_have("dev-1")

        # A reload keeps what was marked while it read, and forgets what it did not find.
        delivery.mark(["dev-2"])
        await delivery.reload()
        assert not delivery.may_have("dev-1")
        assert not delivery.may_have("dev-2")

        # Other processes' announcements arrive on the bus.
        await realtime.bus.publish({"topic": "commands.waiting", "devices": ["dev-3"]})
        assert delivery.may_have("dev-3")
    finally:
        await database.dispose()


@pytest.mark.parametrize("count", [1, 400])
async def test_announcements_fit_the_bus(database_url, count):
    database = Database(database_url)
    realtime = Realtime(MemoryBus())  # refuses what PostgreSQL's NOTIFY would refuse
    seen: list[dict[str, Any]] = []

    async def record(message: dict[str, Any]) -> None:
        seen.append(message)

    realtime.bus.subscribe(record)
    delivery = CommandDelivery(process_state(database, realtime))
    ids = [f"00000000-0000-4000-8000-{n:012}" for n in range(count)]
    try:
        await delivery.announce(ids)
    finally:
        await database.dispose()
    announced = [d for m in seen for d in m["devices"]]
    assert announced == ids
    assert all(delivery.may_have(d) for d in ids)


async def test_after_a_bus_reconnect_the_set_is_read_again(database_url):
    """Announcements made while the bus was cut off were lost: the set is re-read."""
    database = Database(database_url)
    realtime = Realtime(MemoryBus())
    delivery = CommandDelivery(process_state(database, realtime))
    realtime.bus.subscribe(delivery.on_bus_message)
    try:
        delivery.mark(["stale"])
        await realtime.bus.publish({"topic": "bus.reconnected"})
        for _ in range(200):
            if delivery.loaded:
                break
            await asyncio.sleep(0.01)
        assert delivery.loaded
        assert not delivery.may_have("stale")
    finally:
        await delivery.stop()
        await database.dispose()

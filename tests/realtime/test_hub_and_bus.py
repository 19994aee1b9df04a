"""The console hub's bounded queues and the two bus backends (PostgreSQL for real)."""

import asyncio
import os

import pytest

from lunaris_server.realtime.bus import MemoryBus, PayloadTooLarge, PostgresBus
from lunaris_server.realtime.console_hub import RESYNC, ConsoleHub
from tests.databases import POSTGRES_URL

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="needs LUNARIS_TEST_DATABASE_URL")


def drain(queue: asyncio.Queue[str]) -> list[str]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_broadcast_reaches_every_client_in_order():
    hub = ConsoleHub(queue_size=8)
    a, b = hub.connect(), hub.connect()
    for n in range(3):
        hub.broadcast(f"event-{n}")
    assert drain(a.queue) == drain(b.queue) == ["event-0", "event-1", "event-2"]


async def test_overflow_replaces_backlog_with_resync_then_drops_a_stuck_client():
    hub = ConsoleHub(queue_size=3)
    stuck, healthy = hub.connect(), hub.connect()
    for n in range(3):
        hub.broadcast(f"e{n}")
    drain(healthy.queue)
    hub.broadcast("e3")  # the stuck client's queue is full
    assert list(stuck.queue._queue) == [RESYNC]  # type: ignore[attr-defined]
    assert stuck.resync_pending
    assert not stuck.dropped.is_set()
    assert drain(healthy.queue) == ["e3"]
    for n in range(4, 7):
        hub.broadcast(f"e{n}")
    # It did not even take the RESYNC: the hub gives up on it, the healthy one is unaffected.
    assert stuck.dropped.is_set()
    assert hub.client_count == 1
    assert drain(healthy.queue) == ["e4", "e5", "e6"]


async def test_disconnect_removes_the_client():
    hub = ConsoleHub()
    client = hub.connect()
    hub.disconnect(client)
    hub.broadcast("x")
    assert hub.client_count == 0
    assert client.queue.empty()


async def test_memory_bus_delivers_and_refuses_what_postgres_would_refuse():
    bus = MemoryBus()
    received: list[dict] = []

    async def handler(message: dict) -> None:
        received.append(message)

    bus.subscribe(handler)
    await bus.publish({"topic": "console", "n": 1})
    assert received == [{"topic": "console", "n": 1}]
    with pytest.raises(PayloadTooLarge):
        await bus.publish({"topic": "console", "blob": "x" * 8000})
    assert len(received) == 1


async def test_a_failing_handler_does_not_stop_the_others():
    bus = MemoryBus()
    received: list[dict] = []

    async def broken(_message: dict) -> None:
        raise RuntimeError("boom")

    async def working(message: dict) -> None:
        received.append(message)

    bus.subscribe(broken)
    bus.subscribe(working)
    await bus.publish({"topic": "t"})
    assert received == [{"topic": "t"}]


async def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@needs_postgres
async def test_postgres_bus_fans_out_between_processes_in_order(database_url):
    channel = f"lunaris_test_{os.getpid()}"
    a, b = PostgresBus(database_url, channel=channel), PostgresBus(database_url, channel=channel)
    seen_by_a: list[dict] = []
    seen_by_b: list[dict] = []

    async def on_a(m: dict) -> None:
        seen_by_a.append(m)

    async def on_b(m: dict) -> None:
        seen_by_b.append(m)

    a.subscribe(on_a)
    b.subscribe(on_b)
    await a.start()
    await b.start()
    try:
        for n in range(20):
            await a.publish({"topic": "console", "n": n})
        await wait_for(lambda: len(seen_by_b) == 20 and len(seen_by_a) == 20)
        assert [m["n"] for m in seen_by_b] == list(range(20))
        with pytest.raises(PayloadTooLarge):
            await a.publish({"topic": "console", "blob": "x" * 8000})
    finally:
        await a.stop()
        await b.stop()


@needs_postgres
async def test_postgres_bus_reconnects_after_its_connection_is_killed(database_url):
    import asyncpg

    from lunaris_server.db.engine import asyncpg_dsn

    channel = f"lunaris_test_r_{os.getpid()}"
    bus = PostgresBus(database_url, channel=channel)
    seen: list[dict] = []

    async def on_message(m: dict) -> None:
        seen.append(m)

    bus.subscribe(on_message)
    await bus.start()
    try:
        admin = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            # What a PostgreSQL restart does to every connection (this database's only: the
            # server may hold other databases whose listeners are not this test's).
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%' "
                "AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        await wait_for(lambda: {"topic": "bus.reconnected"} in seen)
        await bus.publish({"topic": "console", "after": True})
        await wait_for(lambda: {"topic": "console", "after": True} in seen)
    finally:
        await bus.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_socket_opened_after_its_page_gets_what_was_broadcast_since_the_page():
    clock = Clock()
    hub = ConsoleHub(queue_size=8, clock=clock)
    hub.broadcast("before")
    clock.now += 5
    rendered = clock.now
    clock.now += 0.5
    hub.broadcast("between")  # after the page's request, before its socket
    clock.now += 0.5
    late = hub.connect(since=rendered)
    hub.broadcast("after")
    assert drain(late.queue) == ["between", "after"]
    # Without a page time: only what comes after connecting; with a page time in the
    # future of every event: nothing earlier.
    plain, fresh = hub.connect(), hub.connect(since=clock.now + 10)
    hub.broadcast("later")
    assert drain(plain.queue) == drain(fresh.queue) == ["later"]


async def test_a_page_older_than_what_the_hub_keeps_resyncs_instead():
    clock = Clock()
    hub = ConsoleHub(queue_size=8, clock=clock)
    rendered = clock.now
    hub.broadcast("kept for a while")
    clock.now += 600  # long past REPLAY_S: the next broadcast forgets the first
    hub.broadcast("new")
    assert drain(hub.connect(since=rendered).queue) == [RESYNC]
    # More missed than its queue holds: a resync too.
    rendered = clock.now
    for n in range(10):
        hub.broadcast(f"burst-{n}")
    assert drain(hub.connect(since=rendered).queue) == [RESYNC]


async def test_after_the_bus_reconnects_an_earlier_page_resyncs_when_its_socket_opens():
    clock = Clock()
    hub = ConsoleHub(queue_size=8, clock=clock)
    rendered = clock.now
    clock.now += 2
    hub.resync_all()  # events from other processes may have been missed
    assert drain(hub.connect(since=rendered).queue) == [RESYNC]
    assert drain(hub.connect(since=clock.now + 2).queue) == []

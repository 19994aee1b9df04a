"""The event bus: how server processes tell each other (and themselves) what happened.

Two backends behind one interface. ``MemoryBus`` delivers within the process (the default,
and all SQLite needs). ``PostgresBus`` uses PostgreSQL ``LISTEN/NOTIFY``, so any number of
server processes sharing one database see every message, their own included.

A message is a small JSON object with a ``topic``. NOTIFY payloads are limited to 8,000
bytes, so publishers keep messages small: they carry references (a device id), never
whole lists.
"""

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg
import orjson
import structlog

from lunaris_protocol.backoff import Backoff
from lunaris_server.db.engine import asyncpg_dsn

log = structlog.get_logger("lunaris.bus")

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]

MAX_PAYLOAD_BYTES = 7_900
"""PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more."""
CHANNEL = "lunaris_events"


class PayloadTooLarge(ValueError):
    pass


class EventBus(Protocol):
    process_id: str

    def subscribe(self, handler: Handler) -> None:
        """Calls ``handler`` for every message published by any process."""

    async def publish(self, message: Message) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def backlog(self) -> int:
        """Messages received and not yet handed to the subscribers (for metrics)."""


def encode(message: Message) -> str:
    payload = orjson.dumps(message).decode()
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"bus message of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}; send a reference"
        )
    return payload


class _Subscribers:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def dispatch(self, message: Message) -> None:
        for handler in self._handlers:
            try:
                await handler(message)
            except Exception:
                # One faulty handler must not stop delivery to the others.
                log.exception("bus handler failed", topic=message.get("topic"))


class MemoryBus:
    """Delivery within one process. Messages are size-checked like PostgreSQL's, so code that
    works here does not break when the deployment moves to PostgreSQL."""

    def __init__(self) -> None:
        self.process_id = uuid.uuid4().hex[:12]
        self._subscribers = _Subscribers()

    def subscribe(self, handler: Handler) -> None:
        self._subscribers.subscribe(handler)

    async def publish(self, message: Message) -> None:
        encode(message)
        await self._subscribers.dispatch(message)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def backlog(self) -> int:
        return 0  # delivered as published


class PostgresBus:
    """``LISTEN/NOTIFY`` on one dedicated connection per process.

    If the listening connection drops (PostgreSQL restarted), it reconnects with backoff and
    then delivers ``{"topic": "bus.reconnected"}`` locally, since messages sent meanwhile are
    lost: listeners resynchronise from the database.
    """

    def __init__(self, database_url: str, *, channel: str = CHANNEL) -> None:
        self.process_id = uuid.uuid4().hex[:12]
        self._dsn = asyncpg_dsn(database_url)
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._channel = channel
        self._subscribers = _Subscribers()
        self._listener: asyncpg.Connection | None = None
        self._publisher: asyncpg.Connection | None = None
        self._publish_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        # One consumer keeps notifications in the order PostgreSQL delivered them.
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._connection_lost = asyncio.Event()
        self._stopping = False

    def subscribe(self, handler: Handler) -> None:
        self._subscribers.subscribe(handler)

    @property
    def backlog(self) -> int:
        return self._inbox.qsize()

    async def start(self) -> None:
        try:
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The server still starts (and says it is not ready); the supervisor reconnects.
            log.warning("bus cannot reach PostgreSQL yet; retrying in the background")
            self._connection_lost.set()
        self._supervisor = asyncio.create_task(self._keep_listening(), name="bus-listener")
        self._dispatcher = asyncio.create_task(self._dispatch_inbox(), name="bus-dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._supervisor, self._dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for connection in (self._listener, self._publisher):
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), timeout=5)

    async def publish(self, message: Message) -> None:
        payload = encode(message)
        async with self._publish_lock:
            for attempt in range(2):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(self._dsn)
                    await self._publisher.execute(
                        "SELECT pg_notify($1, $2)", self._channel, payload
                    )
                    return
                except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                    self._publisher = None
                    if attempt:
                        raise

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        connection.add_termination_listener(lambda _conn: self._connection_lost.set())
        await connection.add_listener(self._channel, self._on_notify)
        self._listener = connection
        self._connection_lost.clear()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("ignored a malformed bus message")
            return
        self._inbox.put_nowait(message)

    async def _dispatch_inbox(self) -> None:
        while True:
            await self._subscribers.dispatch(await self._inbox.get())

    async def _keep_listening(self) -> None:
        while not self._stopping:
            await self._connection_lost.wait()
            log.warning("bus connection lost; reconnecting")
            # Quick at first (a PostgreSQL restart takes seconds), jittered so that replicas
            # that lost it together do not reconnect in step.
            backoff = Backoff(cap_s=5.0, first_s=0.2, rng=self._rng)
            while not self._stopping:
                try:
                    await self._listen()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(backoff.next_delay())
            log.info("bus connection restored")
            self._inbox.put_nowait({"topic": "bus.reconnected"})


def make_bus(database_url: str) -> EventBus:
    """PostgreSQL databases get the shared bus; anything else stays in-process."""
    if database_url.startswith("postgresql"):
        return PostgresBus(database_url)
    return MemoryBus()

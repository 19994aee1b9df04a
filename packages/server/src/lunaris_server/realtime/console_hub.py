"""Fan-out of console events to the browsers connected to this process.

Every client has a bounded queue. Broadcasting never waits on a client: an event that does
not fit is dropped, the client's queue is replaced by one ``RESYNC`` (the page then reloads
its fragments from the server), and a client that overflows again before even that was
sent is disconnected. So a slow or stuck browser costs the others, and the agent API,
nothing.

A page is rendered before its socket opens: what happened in between would be lost. So the
hub keeps the events of the last ``REPLAY_S`` seconds (at most ``REPLAY_LIMIT``), and a
socket opened with the time its page's request arrived gets the events since then first, or
one ``RESYNC`` when some of them are no longer kept.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from lunaris_protocol import Resync

log = structlog.get_logger("lunaris.console_hub")

RESYNC = Resync().model_dump_json()


TOO_SLOW = (1013, "too slow")
SESSION_ENDED = (4401, "session ended")
"""The close code live.js takes as "log in again"."""
REPLAY_S = 120.0
REPLAY_LIMIT = 2_000
CLOCK_SKEW_S = 1.0
"""How far apart two server processes' clocks may be: a page rendered by one process and
live on another gets the events of this much before its request too (a refresh it did not
need, at worst)."""


@dataclass(eq=False)
class ConsoleClient:
    queue: asyncio.Queue[str]
    session_id: int | None = None
    """The console session it was opened with (None: an API token)."""
    resync_pending: bool = False
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the hub gives up on this client; its socket handler then closes it."""
    close_with: tuple[int, str] = TOO_SLOW


class ConsoleHub:
    def __init__(self, *, queue_size: int = 256, clock: Callable[[], float] = time.time) -> None:
        self.queue_size = queue_size
        self._clock = clock
        self._clients: set[ConsoleClient] = set()
        self._recent: deque[tuple[float, str]] = deque()
        self._forgotten_at = -math.inf
        """When the newest event no longer kept (or possibly missed) was broadcast."""
        self.resyncs = 0
        """Times a client was told to resync since the process started."""
        self.drops = 0
        """Clients disconnected for not reading."""

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def queue_lengths(self) -> list[int]:
        """Events waiting in each client's queue (for metrics)."""
        return [client.queue.qsize() for client in self._clients]

    def connect(
        self, *, session_id: int | None = None, since: float | None = None
    ) -> ConsoleClient:
        """A client; with ``since`` (when its page's request arrived, in epoch seconds), its
        queue starts with what was broadcast since, or with a ``RESYNC``."""
        client = ConsoleClient(queue=asyncio.Queue(maxsize=self.queue_size), session_id=session_id)
        self._clients.add(client)
        if since is not None:
            self._catch_up(client, since - CLOCK_SKEW_S)
        return client

    def _catch_up(self, client: ConsoleClient, since: float) -> None:
        if since <= self._forgotten_at:
            self._replace_with_resync(client)
            return
        missed = [text for at, text in self._recent if at >= since]
        if len(missed) >= self.queue_size:
            self._replace_with_resync(client)
            return
        for text in missed:
            client.queue.put_nowait(text)

    def _remember(self, text: str) -> None:
        now = self._clock()
        self._recent.append((now, text))
        while self._recent and (
            len(self._recent) > REPLAY_LIMIT or self._recent[0][0] < now - REPLAY_S
        ):
            self._forgotten_at = max(self._forgotten_at, self._recent.popleft()[0])

    def session_ids(self) -> set[int]:
        """The console sessions this process holds sockets of."""
        return {c.session_id for c in self._clients if c.session_id is not None}

    def end_sessions(self, session_ids: set[int]) -> int:
        """Closes the sockets of these sessions (they were ended); returns how many."""
        ended = [c for c in self._clients if c.session_id in session_ids]
        for client in ended:
            self._drop(client, SESSION_ENDED)
        return len(ended)

    def disconnect(self, client: ConsoleClient) -> None:
        self._clients.discard(client)

    def broadcast(self, text: str) -> None:
        """Queues one encoded event for every client; never blocks."""
        self._remember(text)
        for client in list(self._clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._overflow(client)

    def resync_all(self) -> None:
        """Events may have been missed (the bus reconnected): every page reloads, and so does
        every page rendered before now whose socket opens later."""
        self._forgotten_at = self._clock()
        for client in list(self._clients):
            self._replace_with_resync(client)

    def _overflow(self, client: ConsoleClient) -> None:
        if client.resync_pending:
            log.info("dropping a console client that stopped reading")
            self.drops += 1
            self._drop(client, TOO_SLOW)
            return
        self._replace_with_resync(client)

    def _drop(self, client: ConsoleClient, close_with: tuple[int, str]) -> None:
        self.disconnect(client)
        client.close_with = close_with
        client.dropped.set()

    def _replace_with_resync(self, client: ConsoleClient) -> None:
        self.resyncs += 1
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(RESYNC)
        client.resync_pending = True

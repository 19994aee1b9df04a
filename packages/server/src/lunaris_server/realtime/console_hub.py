"""Fan-out of console events to the browsers connected to this process.

Every client has a bounded queue. Broadcasting never waits on a client: an event that does
not fit is dropped, the client's queue is replaced by one ``RESYNC`` (the page then reloads
its fragments from the server), and a client that overflows again before even that was
sent is disconnected. So a slow or stuck browser costs the others, and the agent API,
nothing.
"""

import asyncio
from dataclasses import dataclass, field

import structlog

from lunaris_protocol import Resync

log = structlog.get_logger("lunaris.console_hub")

RESYNC = Resync().model_dump_json()


TOO_SLOW = (1013, "too slow")
SESSION_ENDED = (4401, "session ended")
"""The close code live.js takes as "log in again"."""


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
    def __init__(self, *, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._clients: set[ConsoleClient] = set()
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

    def connect(self, *, session_id: int | None = None) -> ConsoleClient:
        client = ConsoleClient(queue=asyncio.Queue(maxsize=self.queue_size), session_id=session_id)
        self._clients.add(client)
        return client

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
        for client in list(self._clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._overflow(client)

    def resync_all(self) -> None:
        """Events may have been missed (the bus reconnected): every page reloads."""
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

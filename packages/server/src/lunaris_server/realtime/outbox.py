"""Events a transaction wants announced, published only once it has committed.

Services call ``announce`` as they change things (``announce_message`` for a message to the
other server processes rather than to consoles); the route commits through ``commit``, which
publishes what was announced. A rolled-back transaction announces nothing, and a console
that refetches on an event always finds the committed state.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import ConsoleEvent

if TYPE_CHECKING:
    from lunaris_server.realtime.bus import Message
    from lunaris_server.realtime.service import Realtime

log = structlog.get_logger("lunaris.outbox")

_OUTBOX = "lunaris.outbox"
_MESSAGES = "lunaris.outbox.messages"
_AFTER_COMMIT = "lunaris.outbox.after_commit"

T = TypeVar("T")


class Process(Protocol):
    """What a commit needs of the server process (``web.state.AppState`` is one): its realtime
    layer, and its long-lived parts, which after-commit work may ask for by type."""

    @property
    def realtime(self) -> "Realtime": ...

    def part(self, kind: type[T]) -> T: ...


AfterCommit = Callable[[Process], Awaitable[None]]
"""Work for once the transaction has committed (closing a revoked device's sockets, telling
every process that commands wait), given the process."""


def announce(session: AsyncSession, event: ConsoleEvent) -> None:
    session.info.setdefault(_OUTBOX, []).append(event)


def announce_message(session: AsyncSession, message: "Message") -> None:
    """A bus message (a small JSON object with a ``topic``) for every server process."""
    session.info.setdefault(_MESSAGES, []).append(message)


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


def take_messages(session: AsyncSession) -> "list[Message]":
    """The bus messages announced so far, handed over once (for the CLI)."""
    messages: list[Message] = session.info.pop(_MESSAGES, [])
    return messages


async def commit(session: AsyncSession, process: Process) -> None:
    """The one way a transaction ends: commit, then publish what it announced, then run its
    after-commit work. A failure after the commit is logged: the change is made, and the
    processes' periodic checks catch up on what was not told."""
    realtime = process.realtime
    if session.in_transaction():  # a request that never touched the database has nothing to end
        await session.commit()
    for message in take_messages(session):
        try:
            await realtime.bus.publish(message)
        except Exception:
            # Committed all the same; the processes' periodic checks catch up.
            log.exception("could not publish a bus message", topic=message.get("topic"))
    events: list[ConsoleEvent] = session.info.pop(_OUTBOX, [])
    for event in events:
        try:
            await realtime.publish_console(event)
        except Exception:
            # The change is committed; a lost announcement only delays a console's refresh.
            log.exception("could not publish a console event", event_type=event.type)
    hooks: list[AfterCommit] = session.info.pop(_AFTER_COMMIT, [])
    for hook in hooks:
        try:
            await hook(process)
        except Exception:
            log.exception("after-commit work failed")

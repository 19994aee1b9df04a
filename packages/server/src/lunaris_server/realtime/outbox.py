"""Events a transaction wants announced, published only once it has committed.

Services call ``announce`` as they change things; the route commits through ``commit``, which
publishes what was announced. A rolled-back transaction announces nothing, and a console
that refetches on an event always finds the committed state.
"""

from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import ConsoleEvent

if TYPE_CHECKING:
    from lunaris_server.realtime.service import Realtime

log = structlog.get_logger("lunaris.outbox")

_OUTBOX = "lunaris.outbox"


def announce(session: AsyncSession, event: ConsoleEvent) -> None:
    session.info.setdefault(_OUTBOX, []).append(event)


async def commit(session: AsyncSession, realtime: "Realtime") -> None:
    if session.in_transaction():  # a request that never touched the database has nothing to end
        await session.commit()
    events: list[ConsoleEvent] = session.info.pop(_OUTBOX, [])
    for event in events:
        try:
            await realtime.publish_console(event)
        except Exception:
            # The change is committed; a lost announcement only delays a console's refresh.
            log.exception("could not publish a console event", event_type=event.type)

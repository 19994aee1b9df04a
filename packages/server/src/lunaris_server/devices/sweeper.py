"""The offline sweeper: announces devices that stopped heartbeating.

Runs in every server process. The state it acts on is in the database, so a transition
is announced once across all processes, and still announced after a restart.
"""

import structlog

from lunaris_server.devices import service as devices
from lunaris_server.realtime import outbox
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.sweeper")


async def sweep_once(state: AppState) -> int:
    async with state.database.session() as session:
        gone = await devices.mark_offline(session, liveness=state.liveness, now=state.clock())
        await outbox.commit(session, state)
    if gone:
        log.info("devices went offline", count=len(gone))
    return len(gone)

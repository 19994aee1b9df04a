"""Each process's check of the console sockets it holds: a session that ended without the
bus saying so (the CLI on SQLite, a lost announcement) or expired closes its sockets too."""

import structlog

from lunaris_server.accounts import sessions
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.session_check")


async def check_once(state: AppState) -> int:
    """Closes the sockets of sessions no longer valid; returns how many."""
    hub = state.realtime.console
    held = hub.session_ids()
    if not held:
        return 0
    async with state.database.session() as session:
        gone = await sessions.no_longer_valid(session, ids=held, now=state.clock())
        await session.rollback()
    closed = hub.end_sessions(gone) if gone else 0
    if closed:
        log.info("closed the console sockets of sessions that ended", sockets=closed)
    return closed

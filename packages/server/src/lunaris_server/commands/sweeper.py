"""The command sweeper: expires commands nobody started in time, and re-reads which devices
have commands waiting (a safety net behind the bus; the first read also fills the set).

Runs in every server process. Expiry is one conditional UPDATE, so each command is expired
and announced once across all processes.
"""

import asyncio

import structlog

from lunaris_server.commands import service as commands
from lunaris_server.realtime import outbox
from lunaris_server.state import AppState

log = structlog.get_logger("lunaris.commands")


async def sweep_once(state: AppState) -> int:
    async with state.database.session() as session:
        expired = await commands.expire_overdue(session, now=state.clock())
        await outbox.commit(session, state.realtime)
    if expired:
        log.info("commands expired", count=len(expired))
    await state.commands.reload()
    return len(expired)


async def run_sweeper(state: AppState, *, interval_s: float) -> None:
    while True:
        try:
            await sweep_once(state)
        except Exception:
            # The database may be restarting; the next sweep catches up.
            log.exception("command sweep failed")
        # Until the first read succeeds every heartbeat looks for commands: retry sooner.
        await asyncio.sleep(interval_s if state.commands.loaded else min(interval_s, 2.0))

"""The command sweeper: expires commands nobody started in time, fails running ones the agent
stopped reporting on, closes what is still open on revoked devices, and re-reads which
devices have commands waiting (a safety net behind the bus; the first read also fills the
set).

Runs in every server process. Each change is a conditional UPDATE, so each command is closed
and announced once across all processes.
"""

import asyncio
from datetime import timedelta

import structlog

from lunaris_server.commands import handover
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.realtime import outbox
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.commands")


async def sweep_once(state: AppState) -> int:
    """One sweep; returns how many commands it closed."""
    quiet_for = timedelta(seconds=state.settings.command_running_timeout_s)
    async with state.database.session() as session:
        now = state.clock()
        expired = await handover.expire_overdue(session, now=now)
        stalled = await handover.fail_stalled(session, now=now, quiet_for=quiet_for)
        revoked = await handover.close_for_revoked(session, now=now)
        await outbox.commit(session, state.realtime)
    if expired:
        log.info("commands expired", count=len(expired))
    if stalled:
        log.warning("running commands failed: no progress", count=len(stalled))
    if revoked:
        log.info("commands of revoked devices closed", count=len(revoked))
    await state.part(CommandDelivery).reload()
    return len(expired) + len(stalled) + len(revoked)


async def run_sweeper(state: AppState, *, interval_s: float) -> None:
    while True:
        try:
            await sweep_once(state)
        except Exception:
            # The database may be restarting; the next sweep catches up.
            log.exception("command sweep failed")
        # Until the first read succeeds every heartbeat looks for commands: retry sooner.
        await asyncio.sleep(
            interval_s if state.part(CommandDelivery).loaded else min(interval_s, 2.0)
        )

"""The command sweeper: expires commands nobody started in time, fails running ones the agent
stopped reporting on, closes what is still open on revoked devices, and re-reads which
devices have commands waiting (a safety net behind the bus; the first read also fills the
set).

Runs in every server process. Each change is a conditional UPDATE, so each command is closed
and announced once across all processes.
"""

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
        await outbox.commit(session, state)
    if expired:
        log.info("commands expired", count=len(expired))
    if stalled:
        log.warning("running commands failed: no progress", count=len(stalled))
    if revoked:
        log.info("commands of revoked devices closed", count=len(revoked))
    await state.part(CommandDelivery).reload()
    return len(expired) + len(stalled) + len(revoked)


def next_sweep_in(state: AppState, interval_s: float) -> float:
    """Until the first read of waiting commands succeeds every heartbeat looks for commands:
    sooner then."""
    return interval_s if state.part(CommandDelivery).loaded else min(interval_s, 2.0)

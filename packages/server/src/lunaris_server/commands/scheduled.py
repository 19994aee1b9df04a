"""Commands a scheduler queues for many devices at once (a policy's installs): one RUN_UPDATES
per device with the packages due on it, expiring when the window closes; agents that can
start no install after the window's end are told it too."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap, queueing
from lunaris_server.commands.models import Command
from lunaris_server.commands.queueing import new_command


async def queue(
    session: AsyncSession,
    due: dict[str, list[str]],
    *,
    actor: audit.Actor,
    now: datetime,
    expires_at: datetime,
    window_ends_at: datetime | None = None,
) -> dict[str, Command]:
    """One command per device of ``due`` (device id: package ids), for the devices still
    enrolled once locked, and with no open command that installs one of the packages (a
    person may have queued one since the plan was read). Returns them by device."""
    locked = await overlap.lock_devices(session, due)
    devices = sorted(d for d in due if d in locked)
    created: dict[str, Command] = {}
    for start in range(0, len(devices), 1000):
        chunk = devices[start : start + 1000]
        open_commands = await overlap.open_commands(session, chunk)
        for device_id in chunk:
            packages = due[device_id]
            if any(overlap.covers(c, packages) for c in open_commands.get(device_id, [])):
                continue
            created[device_id] = new_command(
                device_id=device_id,
                packages=packages,
                actor=actor,
                now=now,
                expires_in=expires_at - now,
                window_ends_at=window_ends_at,
            )
    await queueing.queue(session, list(created.values()), now=now)
    return created

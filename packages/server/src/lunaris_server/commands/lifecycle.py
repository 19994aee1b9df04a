"""How a device's commands follow its life (see devices/lifecycle.py)."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.commands import handover
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.commands.models import Command
from lunaris_server.realtime import outbox


class CommandsFollowDevices:
    async def device_revoked(self, session: AsyncSession, *, device_id: str, now: datetime) -> None:
        """Its open commands are closed (its agent can no longer fetch or report them); once
        that is committed, this process re-reads which devices have commands waiting (the
        other processes' sweeps re-read theirs)."""
        await handover.close_for_revoked(session, now=now, device_id=device_id)

        async def reload(process: outbox.Process) -> None:
            await process.part(CommandDelivery).reload()

        outbox.after_commit(session, reload)

    async def device_reenrolled(self, session: AsyncSession, *, device_id: str) -> None:
        return None  # its old commands stay closed

    async def device_merged(
        self, session: AsyncSession, *, old_id: str, new_id: str
    ) -> dict[str, int]:
        moved = await session.execute(
            update(Command)
            .where(Command.device_id == old_id)
            .values(device_id=new_id)
            .execution_options(synchronize_session=False)
        )
        return {"commands": int(getattr(moved, "rowcount", 0) or 0)}

"""How a device's update rows follow its life (see devices/lifecycle.py)."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.updates import fleet_counts
from lunaris_server.updates.models import UpdateEvent


class UpdatesFollowDevices:
    async def device_revoked(self, session: AsyncSession, *, device_id: str, now: datetime) -> None:
        # The counts cover the devices the console lists.
        await fleet_counts.device_rows_counted(session, device_id=device_id, counted=False)

    async def device_reenrolled(self, session: AsyncSession, *, device_id: str) -> None:
        await fleet_counts.device_rows_counted(session, device_id=device_id, counted=True)

    async def device_merged(
        self, session: AsyncSession, *, old_id: str, new_id: str
    ) -> dict[str, int]:
        """The history moves; the old record's waiting list (uncounted since it was revoked)
        stays with it: the new record's own report is the PC's list now."""
        moved = await session.execute(
            update(UpdateEvent)
            .where(UpdateEvent.device_id == old_id)
            .values(device_id=new_id)
            .execution_options(synchronize_session=False)
        )
        return {"update_events": int(getattr(moved, "rowcount", 0) or 0)}

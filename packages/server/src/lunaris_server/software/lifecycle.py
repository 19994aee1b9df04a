"""How a device's inventory follows its life (see devices/lifecycle.py)."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.software import fleet_counts
from lunaris_server.software.models import DeviceInventory


class SoftwareFollowsDevices:
    """Revoking takes a device's apps out of the fleet's counts; enrolling it again puts them
    back. Both drop the digest held for it, so its next report sends the whole list and a
    stale digest can never hide a change. The history (update_events) moves with the
    updates' own listener."""

    async def device_revoked(self, session: AsyncSession, *, device_id: str, now: datetime) -> None:
        await fleet_counts.device_counted(session, device_id=device_id, counted=False)
        await _forget_digest(session, device_id)

    async def device_reenrolled(self, session: AsyncSession, *, device_id: str) -> None:
        await fleet_counts.device_counted(session, device_id=device_id, counted=True)
        await _forget_digest(session, device_id)

    async def device_merged(
        self, session: AsyncSession, *, old_id: str, new_id: str
    ) -> dict[str, int]:
        """The old record's inventory (uncounted since it was revoked) stays with it: the new
        record's own report is the PC's list now."""
        return {}


async def _forget_digest(session: AsyncSession, device_id: str) -> None:
    await session.execute(
        update(DeviceInventory)
        .where(DeviceInventory.device_id == device_id)
        .values(digest=None)
        .execution_options(synchronize_session=False)
    )

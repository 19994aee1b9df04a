"""What other domains do when a device's life changes, in the same transaction.

Update lists and commands belong to devices, so those domains build on this one and devices
cannot call them. Instead each app hands its listeners to the device services that need
them (see app.py): revoking a device takes its updates out of the fleet's counts and closes
its commands; enrolling it again counts its updates again; merging a reimaged PC's old
record moves the old record's history to the new one.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class DeviceListener(Protocol):
    async def device_revoked(
        self, session: AsyncSession, *, device_id: str, now: datetime
    ) -> None: ...

    async def device_reenrolled(self, session: AsyncSession, *, device_id: str) -> None: ...

    async def device_merged(
        self, session: AsyncSession, *, old_id: str, new_id: str
    ) -> dict[str, int]:
        """Moves what belongs to ``old_id`` to ``new_id``; how many rows of each kind."""
        ...


@dataclass
class DeviceLifecycle:
    listeners: list[DeviceListener] = field(default_factory=list)

    async def revoked(self, session: AsyncSession, *, device_id: str, now: datetime) -> None:
        for listener in self.listeners:
            await listener.device_revoked(session, device_id=device_id, now=now)

    async def reenrolled(self, session: AsyncSession, *, device_id: str) -> None:
        for listener in self.listeners:
            await listener.device_reenrolled(session, device_id=device_id)

    async def merged(self, session: AsyncSession, *, old_id: str, new_id: str) -> dict[str, int]:
        moved: dict[str, int] = {}
        for listener in self.listeners:
            moved.update(await listener.device_merged(session, old_id=old_id, new_id=new_id))
        return moved

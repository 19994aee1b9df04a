"""Fleet views the console adds: the devices waiting for one package, and the fleet table
as CSV."""

from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.csv_export import csv_lines
from lunaris_server.devices.models import Device
from lunaris_server.updates import service as updates
from lunaris_server.updates.models import DeviceUpdate
from lunaris_server.updates.service import FleetQuery

BATCH = 500


async def devices_waiting_for(
    session: AsyncSession, *, package_identifier: str, source: str | None, limit: int, offset: int
) -> tuple[list[tuple[Device, DeviceUpdate]], int]:
    """Each device with that update waiting, and the waiting row (a device with two installs
    of the package appears twice). Served by the (package, source) index."""
    statement = (
        select(Device, DeviceUpdate)
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(
            DeviceUpdate.package_identifier == package_identifier,
            DeviceUpdate.source.is_(None) if source is None else DeviceUpdate.source == source,
            Device.revoked_at.is_(None),
        )
    )
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = await session.execute(
        statement.order_by(func.lower(Device.hostname), Device.id, DeviceUpdate.id)
        .limit(limit)
        .offset(offset)
    )
    return [(device, update) for device, update in rows], total or 0


FLEET_HEADER = (
    "package_identifier",
    "name",
    "source",
    "devices",
    "installed_versions",
    "available_version",
    "explicit_targeting",
    "truncated",
)


async def fleet_updates_csv(session: AsyncSession, *, query: FleetQuery) -> str:
    """Answered whole, like ``devices.export``: a stream would hold the connection."""
    chunks = [csv_lines([FLEET_HEADER])]
    offset = 0
    while True:
        rows, _total = await updates.fleet_updates(
            session, query=replace(query, limit=BATCH, offset=offset)
        )
        chunks.append(
            csv_lines(
                (
                    u.package_identifier,
                    u.name,
                    u.source or "",
                    u.devices,
                    " ".join(u.installed_versions),
                    u.available_version or "",
                    "yes" if u.explicit_targeting else "no",
                    "yes" if u.truncated else "no",
                )
                for u in rows
            )
        )
        if len(rows) < BATCH:
            return "".join(chunks)
        offset += BATCH

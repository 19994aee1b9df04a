"""Fleet views the console adds: the devices waiting for one package, and the fleet table
as CSV."""

from collections import defaultdict
from dataclasses import replace

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.console.csv_export import csv_lines
from lunaris_server.devices.models import Device
from lunaris_server.updates import fleet_counts
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates.models import DeviceUpdate, FleetPackage
from lunaris_server.updates.queries import FleetQuery

BATCH = 500


async def devices_waiting_for(
    session: AsyncSession, *, package_identifier: str, source: str | None, limit: int, offset: int
) -> tuple[list[tuple[Device, DeviceUpdate]], int]:
    """A page of the devices waiting for that update (by hostname), each with its waiting
    row (a device with two installs of the package comes with both), and how many devices
    wait in all (from the fleet counters).

    The devices are read in hostname order and kept when they wait for the package, which
    stops after a page; reading the package's rows first would sort all of them."""
    key = fleet_counts.source_key(source)
    waiting = (
        DeviceUpdate.package_identifier == package_identifier,
        # None and "" are the same "no source" to the console.
        or_(DeviceUpdate.source.is_(None), DeviceUpdate.source == "")
        if key == ""
        else DeviceUpdate.source == key,
    )
    devices = list(
        await session.scalars(
            select(Device)
            .where(
                Device.revoked_at.is_(None),
                select(DeviceUpdate.id)
                .where(DeviceUpdate.device_id == Device.id, *waiting)
                .exists(),
            )
            .order_by(func.lower(Device.hostname), Device.id)
            .limit(limit)
            .offset(offset)
        )
    )
    rows: dict[str, list[DeviceUpdate]] = defaultdict(list)
    if devices:
        for row in await session.scalars(
            select(DeviceUpdate)
            .where(DeviceUpdate.device_id.in_([d.id for d in devices]), *waiting)
            .order_by(DeviceUpdate.id)
        ):
            rows[row.device_id].append(row)
    total = await session.scalar(
        select(FleetPackage.devices).where(
            FleetPackage.package_identifier == package_identifier, FleetPackage.source == key
        )
    )
    return [(device, row) for device in devices for row in rows[device.id]], total or 0


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
        rows, _total = await update_queries.fleet_updates(
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

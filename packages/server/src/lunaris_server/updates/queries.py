"""Reads of the update lists: one device's updates and history, and the fleet's packages
(what waits where, sorted, searched and paged)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    case,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.console.formatting import run_confirmation
from lunaris_server.core.versions import newest, sort_key
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices.models import Device
from lunaris_server.updates import fleet_counts
from lunaris_server.updates.models import DeviceUpdate, FleetPackage, FleetVariant, UpdateEvent


async def device_updates(session: AsyncSession, *, device_id: str) -> list[DeviceUpdate]:
    rows = await session.scalars(
        select(DeviceUpdate)
        .where(DeviceUpdate.device_id == device_id)
        .order_by(func.lower(DeviceUpdate.name), DeviceUpdate.package_identifier, DeviceUpdate.id)
    )
    return list(rows)


async def device_events(
    session: AsyncSession, *, device_id: str, limit: int, offset: int
) -> tuple[list[UpdateEvent], int]:
    query = select(UpdateEvent).where(UpdateEvent.device_id == device_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(UpdateEvent.at.desc(), UpdateEvent.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


class FleetSort(StrEnum):
    DEVICES = "devices"
    PACKAGE = "package_identifier"
    NAME = "name"


@dataclass(frozen=True, slots=True)
class FleetUpdate:
    """One package waiting somewhere in the fleet."""

    package_identifier: str
    source: str | None
    name: str
    devices: int
    installed_versions: list[str]
    available_version: str | None
    explicit_targeting: bool
    truncated: bool


@dataclass(frozen=True, slots=True)
class FleetQuery:
    search: str | None = None
    source: str | None = None
    sort: FleetSort = FleetSort.DEVICES
    descending: bool = True
    limit: int = 50
    offset: int = 0

    @staticmethod
    def parse_sort(sort: str) -> tuple[FleetSort, bool]:
        return parse_sort(sort, FleetSort, what="updates")


MAX_INSTALLED_VERSIONS_SHOWN = 20


async def fleet_updates(
    session: AsyncSession, *, query: FleetQuery
) -> tuple[list[FleetUpdate], int]:
    """Pages through the fleet counters (``fleet_counts``), then reads the variants of the
    page's packages for their versions, name and flags.

    A search picks packages whose id or any waiting row's name contains it; a package's
    count is always every device waiting for it. "Newest available" needs version
    ordering, which SQL's string max gets wrong (9 > 10), so it is computed in Python.
    """
    package = FleetPackage
    statement = select(package.package_identifier, package.source, package.devices)
    of_this_package = (
        FleetVariant.package_identifier == package.package_identifier,
        FleetVariant.source == package.source,
    )
    if query.search:
        pattern = contains_pattern(query.search)
        statement = statement.where(
            or_(
                func.lower(package.package_identifier).like(pattern, escape="\\"),
                select(FleetVariant.key)
                .where(*of_this_package, func.lower(FleetVariant.name).like(pattern, escape="\\"))
                .exists(),
            )
        )
    if query.source is not None:
        statement = statement.where(package.source == fleet_counts.source_key(query.source))
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    sort_column = {
        FleetSort.DEVICES: package.devices,
        FleetSort.PACKAGE: func.lower(package.package_identifier),
        FleetSort.NAME: func.lower(
            select(func.max(FleetVariant.name)).where(*of_this_package).scalar_subquery()
        ),
    }[query.sort]
    page = (
        await session.execute(
            statement.order_by(
                sort_column.desc() if query.descending else sort_column.asc(),
                package.package_identifier,
                package.source,
            )
            .limit(query.limit)
            .offset(query.offset)
        )
    ).all()
    if not page:
        return [], total or 0

    variants: dict[tuple[str, str], list[FleetVariant]] = defaultdict(list)
    for variant in await session.scalars(
        select(FleetVariant).where(
            tuple_(FleetVariant.package_identifier, FleetVariant.source).in_(
                [(row.package_identifier, row.source) for row in page]
            )
        )
    ):
        variants[(variant.package_identifier, variant.source)].append(variant)

    items = []
    for row in page:
        rows = variants[(row.package_identifier, row.source)]
        installed = sorted({v.installed_version for v in rows}, key=sort_key, reverse=True)
        items.append(
            FleetUpdate(
                package_identifier=row.package_identifier,
                source=fleet_counts.source_of(row.source),
                name=max((v.name for v in rows), default=row.package_identifier),
                devices=row.devices,
                installed_versions=installed[:MAX_INSTALLED_VERSIONS_SHOWN],
                available_version=newest([v.available_version for v in rows]),
                explicit_targeting=any(v.explicit_targeting for v in rows),
                truncated=any(v.truncated for v in rows),
            )
        )
    return items, total or 0


@dataclass(frozen=True, slots=True)
class RunPreview:
    """What installing a package on every device waiting for it (from a source, or from
    every source) would do, as a run's confirmation says it."""

    package: str
    name: str
    """The name winget shows for it, or its id where the devices' rows disagree."""
    version: str | None
    """The version the devices are offered, when it is one for all of them."""
    devices: int
    """Devices that get a command: listed, with a row of it winget did not cut short."""
    offline: int
    """Of those, the offline ones: theirs waits until they are back."""

    @property
    def confirmation(self) -> str:
        """ "Install 7-Zip 24.08 on 9 devices; 1 is offline and will install when it is back." """
        what = f"{self.name} {self.version}" if self.version else self.name
        if self.version is None and self.devices > 1:
            what += " (the version each device is offered)"
        return run_confirmation(what, self.devices, self.offline)


async def run_preview(
    session: AsyncSession, *, package: str, source: str | None, offline_before: datetime
) -> RunPreview:
    """A run of ``package`` (from ``source``): the same devices as ``commands.service.
    create_for_package`` picks; a device last seen before ``offline_before`` is offline."""
    conditions = [
        DeviceUpdate.package_identifier == package,
        DeviceUpdate.truncated.is_(False),
        Device.revoked_at.is_(None),
    ]
    if source is not None:
        conditions.append(DeviceUpdate.source == source)
    offline = case((Device.last_seen_at <= offline_before, DeviceUpdate.device_id))
    row = (
        await session.execute(
            select(
                func.count(func.distinct(DeviceUpdate.device_id)),
                func.count(func.distinct(offline)),
                func.min(DeviceUpdate.name),
                func.max(DeviceUpdate.name),
                func.min(DeviceUpdate.available_version),
                func.max(DeviceUpdate.available_version),
            )
            .join(Device, Device.id == DeviceUpdate.device_id)
            .where(*conditions)
        )
    ).one()
    devices, offline_count, first_name, last_name, lowest, highest = row
    return RunPreview(
        package=package,
        name=first_name if first_name and first_name == last_name else package,
        version=lowest if lowest and lowest == highest else None,
        devices=int(devices),
        offline=int(offline_count),
    )

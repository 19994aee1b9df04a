"""Reads of the update lists: one device's updates and history, and the fleet's packages
(what waits where, sorted, searched and paged)."""

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import (
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.core.versions import newest, sort_key
from lunaris_server.db.queries import contains_pattern, parse_sort
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

"""Reads of the inventory: the fleet's apps (searched, with a version range), the spread of
one app's versions, the devices behind every figure, and one device's installed list.

The fleet's figures come from the counters (software_titles, software_versions); a range
sums the devices of the versions inside it, found through the versions' sort keys in SQL.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.db.queries import contains_pattern
from lunaris_server.devices.models import Device
from lunaris_server.software.models import (
    DeviceInventory,
    DeviceSoftware,
    SoftwareTitle,
    SoftwareVersion,
)
from lunaris_server.software.ranges import Bound, Comparison, SoftwareSearch


@dataclass(frozen=True, slots=True)
class FleetApp:
    package_identifier: str
    name: str
    devices: int
    """Devices with any version installed."""
    versions: int
    matching: int | None
    """Devices with a version inside the search's range (None without a range)."""


@dataclass(frozen=True, slots=True)
class AppVersion:
    version: str
    devices: int
    matching: bool
    """Inside the range asked for (every version without one)."""


def in_range(key: Any, bounds: Sequence[Bound]) -> ColumnElement[bool]:
    """A sort-key column inside every bound."""
    compare = {
        Comparison.LT: key.__lt__,
        Comparison.LTE: key.__le__,
        Comparison.GT: key.__gt__,
        Comparison.GTE: key.__ge__,
        Comparison.EQ: key.__eq__,
    }
    return and_(*(compare[bound.comparison](bound.key) for bound in bounds))


def _matching_titles(search: SoftwareSearch) -> Select[Any]:
    statement = select(SoftwareTitle)
    if search.term:
        pattern = contains_pattern(search.term)
        statement = statement.where(
            or_(
                func.lower(SoftwareTitle.package_identifier).like(pattern, escape="\\"),
                func.lower(SoftwareTitle.name).like(pattern, escape="\\"),
            )
        )
    return statement


async def fleet_apps(
    session: AsyncSession,
    *,
    search: SoftwareSearch,
    limit: int,
    offset: int,
    count_up_to: int | None = None,
) -> tuple[list[FleetApp], int]:
    """The apps whose id or name contains the search's term, most installed first; with a
    range, only those with a version inside it, most devices inside it first.

    ``count_up_to`` stops counting there (the total is then at most that plus one): a fleet
    has hundreds of thousands of titles, most of them one PC's own entries, and counting
    them all is most of the page's time."""
    titles = _matching_titles(search).subquery()
    if search.bounds:
        inside = func.sum(SoftwareVersion.devices).label("matching")
        statement: Select[Any] = (
            select(titles.c.package_identifier, titles.c.name, titles.c.devices, inside)
            .join(
                SoftwareVersion, SoftwareVersion.package_identifier == titles.c.package_identifier
            )
            .where(in_range(SoftwareVersion.version_key, search.bounds))
            .group_by(titles.c.package_identifier, titles.c.name, titles.c.devices)
        )
        order = (inside.desc(), titles.c.package_identifier)
    else:
        statement = select(
            titles.c.package_identifier, titles.c.name, titles.c.devices, titles.c.devices
        )
        order = (titles.c.devices.desc(), titles.c.package_identifier)
    counted = statement if count_up_to is None else statement.limit(count_up_to + 1)
    total = await session.scalar(select(func.count()).select_from(counted.subquery()))
    page = (await session.execute(statement.order_by(*order).limit(limit).offset(offset))).all()
    if not page:
        return [], total or 0
    versions = dict(
        (
            await session.execute(
                select(SoftwareVersion.package_identifier, func.count())
                .where(SoftwareVersion.package_identifier.in_([row[0] for row in page]))
                .group_by(SoftwareVersion.package_identifier)
            )
        ).all()
    )
    return [
        FleetApp(
            package_identifier=package,
            name=name,
            devices=devices,
            versions=versions.get(package, 0),
            matching=matching if search.bounds else None,
        )
        for package, name, devices, matching in page
    ], total or 0


async def app_title(session: AsyncSession, package_identifier: str) -> SoftwareTitle | None:
    return await session.get(SoftwareTitle, package_identifier)


async def app_versions(
    session: AsyncSession, *, package_identifier: str, bounds: Sequence[Bound]
) -> list[AppVersion]:
    """Every version of the app on some device, newest first."""
    inside: Any = in_range(SoftwareVersion.version_key, bounds) if bounds else True
    rows = await session.execute(
        select(SoftwareVersion.version, SoftwareVersion.devices, inside)
        .where(SoftwareVersion.package_identifier == package_identifier)
        .order_by(SoftwareVersion.version_key.desc(), SoftwareVersion.version)
    )
    return [AppVersion(version, devices, bool(matching)) for version, devices, matching in rows]


@dataclass(frozen=True, slots=True)
class DeviceWithApp:
    device: Device
    version: str
    source: str | None
    instances: int
    first_seen_at: datetime
    scope: str
    user_account: str


async def devices_with(
    session: AsyncSession,
    *,
    package_identifier: str,
    bounds: Sequence[Bound],
    limit: int,
    offset: int,
    scope: str | None = None,
) -> tuple[list[DeviceWithApp], int]:
    """The listed devices that have the app in a version inside the bounds, oldest version
    first (what a vulnerability search wants at the top), through the (package, version
    key) index.

    The total is the counters' (devices per version inside the bounds, the figure the
    apps' list shows): counting the rows read every one of them and its device, 1 to 2 s
    for an app on 100,000 devices. It differs from the rows only for a device listing one
    version from two sources, or for the machine and in a user's profile.

    With ``scope`` (``machine`` or ``user``) only those installs, and the total counts the
    rows (the counters know no scope): users' installs are few, all the machine's of a
    common app on a large fleet take a second or two to count."""
    rows = DeviceSoftware
    conditions = [
        rows.package_identifier == package_identifier,
        Device.revoked_at.is_(None),
    ]
    if bounds:
        conditions.append(in_range(rows.version_key, bounds))
    if scope is not None:
        conditions.append(rows.scope == scope)
        total = await session.scalar(
            select(func.count())
            .select_from(rows)
            .join(Device, Device.id == rows.device_id)
            .where(*conditions)
        )
    else:
        total = await session.scalar(
            select(func.coalesce(func.sum(SoftwareVersion.devices), 0)).where(
                SoftwareVersion.package_identifier == package_identifier,
                in_range(SoftwareVersion.version_key, bounds) if bounds else true(),
            )
        )
    page = (
        await session.execute(
            select(
                Device,
                rows.version,
                rows.source,
                rows.instances,
                rows.first_seen_at,
                rows.scope,
                rows.user_account,
            )
            .join(rows, Device.id == rows.device_id)
            .where(*conditions)
            .order_by(rows.version_key, rows.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return [DeviceWithApp(*row) for row in page], total or 0


async def device_software(session: AsyncSession, *, device_id: str) -> list[DeviceSoftware]:
    """One device's apps, by name."""
    rows = await session.scalars(
        select(DeviceSoftware)
        .where(DeviceSoftware.device_id == device_id)
        .order_by(
            func.lower(DeviceSoftware.name), DeviceSoftware.package_identifier, DeviceSoftware.id
        )
    )
    return list(rows)


async def device_inventory(session: AsyncSession, *, device_id: str) -> DeviceInventory | None:
    return await session.get(DeviceInventory, device_id)

"""Compliance figures, for the fleet or one group, counted in the database.

- **devices**: enrolled devices (revoked ones never count), those of the group when asked;
- **compliant**: devices with a scan that worked and no waiting update that a package rule
  does not ignore (compliance/ignored.py: the rules decide, as everywhere else); the
  devices with such an update are *missing*;
- **not scanned**: devices with no scan that worked yet (``devices.last_good_scan_at`` is
  null): they count among the devices and are not compliant, since nothing shows what they
  need (and a scan that keeps failing must not make a PC look patched); they are not
  *missing* either, as no update is known to wait on them (rows come only from good scans);
- **age buckets**: the waiting updates rules do not ignore (device x package rows, as
  ``device_updates`` keeps them), by whole days since the device first reported the update
  (``device_updates.first_seen_at``): 0-7, 8-30, over 30;
- **overdue**: devices with such an update that has waited longer than the SLA (days) of the
  policy the device takes (policies/planning.ring_case: the first enabled policy, by
  priority, with a ring it is in). A device of no policy, or of one without an SLA, is never
  overdue.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.compliance.ignored import Ignored, ignored_updates
from lunaris_server.db.base import UTCDateTime
from lunaris_server.devices import groups as device_groups
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.policies import planning
from lunaris_server.policies import service as policies
from lunaris_server.updates.models import DeviceUpdate

Figure = Literal["missing", "age_0_7", "age_8_30", "age_over_30", "overdue"]
FIGURES: tuple[Figure, ...] = ("missing", "age_0_7", "age_8_30", "age_over_30", "overdue")


@dataclass(frozen=True, slots=True)
class Figures:
    devices: int
    compliant: int
    not_scanned: int
    overdue: int
    waiting: int
    age_0_7: int
    age_8_30: int
    age_over_30: int

    @property
    def missing(self) -> int:
        return self.devices - self.compliant - self.not_scanned

    @property
    def compliant_percent(self) -> float | None:
        """Share of compliant devices, one decimal; None for no devices."""
        return round(100 * self.compliant / self.devices, 1) if self.devices else None


@dataclass(frozen=True, slots=True)
class Scope:
    """What the figures are counted over: the devices (of a group), what rules ignore, and
    each device's overdue cutoff."""

    group: DeviceGroup | None
    ignored: Ignored
    cutoff: ColumnElement[Any] | None
    """A column of the devices row: an update first seen before it is overdue (NULL: the
    device has no SLA); None when no policy has an SLA."""
    now: datetime

    @property
    def week(self) -> datetime:
        return self.now - timedelta(days=8)

    @property
    def month(self) -> datetime:
        return self.now - timedelta(days=31)


async def scope(session: AsyncSession, *, group_id: int | None, now: datetime) -> Scope:
    group = None
    if group_id is not None:
        group = await device_groups.get_group(session, group_id=group_id)
    found = await policies.list_policies(session)
    cutoff = None
    if any(p.enabled and p.sla_days is not None for p in found):
        rings = await policies.rings_of(session, [p.id for p in found])
        groups = {g.id: g for g in await session.scalars(select(DeviceGroup))}
        cutoff = planning.ring_case(
            found,
            rings,
            groups,
            lambda policy, _ring: (
                null()
                if policy.sla_days is None
                else literal(now - timedelta(days=policy.sla_days), UTCDateTime())
            ),
        )
    return Scope(group, await ignored_updates(session), cutoff, now)


def _devices(scope: Scope, *, cutoff: bool = True) -> Subquery:
    key = scope.ignored.key()
    columns: list[Any] = [Device.id, Device.hostname, Device.last_good_scan_at]
    columns.append((key if key is not None else literal("")).label("key"))
    if cutoff:
        columns.append((scope.cutoff if scope.cutoff is not None else null()).label("cutoff"))
    statement = select(*columns).where(Device.revoked_at.is_(None))
    if scope.group is not None:
        statement = statement.where(member_condition(scope.group))
    return statement.subquery("scoped")


def _waiting(scope: Scope, devices: Subquery, *columns: Any) -> Select[Any]:
    """The waiting updates rules do not ignore, of the devices in scope."""
    ignored = scope.ignored.condition(devices.c.key if scope.ignored.by_key else None)
    return (
        select(*columns)
        .select_from(DeviceUpdate)
        .join(devices, devices.c.id == DeviceUpdate.device_id)
        .where(~ignored)
    )


def _overdue(scope: Scope, devices: Subquery) -> ColumnElement[bool]:
    return DeviceUpdate.first_seen_at < devices.c.cutoff


def figure_condition(scope: Scope, devices: Subquery, figure: Figure) -> ColumnElement[bool]:
    seen = DeviceUpdate.first_seen_at
    if figure == "age_0_7":
        return seen > scope.week
    if figure == "age_8_30":
        return and_(seen <= scope.week, seen > scope.month)
    if figure == "age_over_30":
        return seen <= scope.month
    if figure == "overdue":
        return _overdue(scope, devices) if scope.cutoff is not None else literal(False)
    return literal(True)


async def figures(session: AsyncSession, scope: Scope) -> Figures:
    """Two statements: the devices in scope, and the waiting updates counted per device
    first (ages, the oldest), then over the devices, where each device's SLA is asked once
    (not once per update)."""
    devices = _devices(scope, cutoff=False)

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    unscanned = count_where(devices.c.last_good_scan_at.is_(None))
    counted = (await session.execute(select(func.count(), unscanned).select_from(devices))).one()
    total, not_scanned = (int(value) for value in counted)

    buckets: tuple[Figure, ...] = ("age_0_7", "age_8_30", "age_over_30")
    per_device = (
        _waiting(
            scope,
            devices,
            DeviceUpdate.device_id,
            func.count().label("waiting"),
            *(count_where(figure_condition(scope, devices, b)).label(b) for b in buckets),
            func.min(DeviceUpdate.first_seen_at).label("oldest"),
        )
        .group_by(DeviceUpdate.device_id)
        .subquery("per_device")
    )
    overdue: ColumnElement[int] = literal(0)
    statement = select(
        func.count(),
        func.coalesce(func.sum(per_device.c.waiting), 0),
        *(func.coalesce(func.sum(per_device.c[b]), 0) for b in buckets),
    )
    if scope.cutoff is not None:
        overdue = count_where(per_device.c.oldest < scope.cutoff)
        statement = statement.join_from(per_device, Device, Device.id == per_device.c.device_id)
    else:
        statement = statement.select_from(per_device)
    row = (await session.execute(statement.add_columns(overdue))).one()
    missing, waiting, week, month, older, overdue_devices = (int(value) for value in row)
    return Figures(
        devices=total,
        compliant=total - missing - not_scanned,
        not_scanned=not_scanned,
        overdue=overdue_devices,
        waiting=waiting,
        age_0_7=week,
        age_8_30=month,
        age_over_30=older,
    )


@dataclass(frozen=True, slots=True)
class FigureRow:
    device_id: str
    hostname: str
    package_identifier: str
    name: str
    source: str | None
    installed_version: str
    available_version: str
    first_seen_at: datetime
    overdue: bool


async def figure_rows(
    session: AsyncSession, scope: Scope, figure: Figure, *, batch: int = 20_000
) -> AsyncIterator[list[FigureRow]]:
    """The device x package rows behind a figure, by device, in batches (each starts where
    the last one ended)."""
    devices = _devices(scope)
    overdue = _overdue(scope, devices) if scope.cutoff is not None else literal(False)
    statement = _waiting(
        scope,
        devices,
        DeviceUpdate.id,
        DeviceUpdate.device_id,
        devices.c.hostname,
        DeviceUpdate.package_identifier,
        DeviceUpdate.name,
        DeviceUpdate.source,
        DeviceUpdate.installed_version,
        DeviceUpdate.available_version,
        DeviceUpdate.first_seen_at,
        func.coalesce(overdue, False).label("overdue"),
    ).where(figure_condition(scope, devices, figure))
    after: tuple[str, int] | None = None
    while True:
        page = statement
        if after is not None:
            page = page.where(
                (DeviceUpdate.device_id > after[0])
                | ((DeviceUpdate.device_id == after[0]) & (DeviceUpdate.id > after[1]))
            )
        rows = list(
            await session.execute(
                page.order_by(DeviceUpdate.device_id, DeviceUpdate.id).limit(batch)
            )
        )
        if rows:
            yield [
                FigureRow(
                    device_id=row.device_id,
                    hostname=row.hostname,
                    package_identifier=row.package_identifier,
                    name=row.name,
                    source=row.source,
                    installed_version=row.installed_version,
                    available_version=row.available_version,
                    first_seen_at=row.first_seen_at,
                    overdue=bool(row.overdue),
                )
                for row in rows
            ]
        if len(rows) < batch:
            return
        after = (rows[-1].device_id, rows[-1].id)

"""The dashboard's figures, each one aggregate query (they stay fast at 50,000 devices)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.devices.models import Device
from lunaris_server.devices.service import Liveness
from lunaris_server.updates.models import UpdateEvent
from lunaris_server.updates.service import EventKind

ACTIVITY_DAYS = 30


@dataclass(frozen=True, slots=True)
class FleetStats:
    devices: int
    online: int
    offline: int
    with_updates: int
    """Devices with at least one update waiting."""
    pending_updates: int
    """Updates waiting, summed over devices."""
    scan_errors: int
    """Devices whose last scan failed."""


async def fleet_stats(session: AsyncSession, *, liveness: Liveness, now: datetime) -> FleetStats:
    def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = (
        await session.execute(
            select(
                func.count(),
                count_where(Device.last_seen_at > liveness.cutoff(now)),
                count_where(Device.updates_count > 0),
                func.coalesce(func.sum(Device.updates_count), 0),
                count_where(Device.scan_error_at.is_not(None)),
            ).where(Device.revoked_at.is_(None))
        )
    ).one()
    devices, online, with_updates, pending, scan_errors = (int(value) for value in row)
    return FleetStats(
        devices=devices,
        online=online,
        offline=devices - online,
        with_updates=with_updates,
        pending_updates=pending,
        scan_errors=scan_errors,
    )


@dataclass(frozen=True, slots=True)
class DailyActivity:
    days: list[date]
    detected: list[int]
    resolved: list[int]


def _utc_day(session: AsyncSession) -> ColumnElement[str]:
    """The UTC calendar day of an event as ``YYYY-MM-DD`` text, in either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", UpdateEvent.at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", UpdateEvent.at)  # SQLite stores UTC already


async def daily_activity(
    session: AsyncSession, *, now: datetime, days: int = ACTIVITY_DAYS
) -> DailyActivity:
    """Updates detected and resolved per UTC day over the last ``days`` days (today included)."""
    first_day = now.date() - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    day = _utc_day(session).label("day")
    rows = await session.execute(
        select(day, UpdateEvent.kind, func.count())
        .where(
            UpdateEvent.at >= start,
            UpdateEvent.kind.in_([EventKind.DETECTED.value, EventKind.RESOLVED.value]),
        )
        .group_by(day, UpdateEvent.kind)
    )
    counts = {(str(d), kind): int(n) for d, kind, n in rows}
    all_days = [first_day + timedelta(days=i) for i in range(days)]
    return DailyActivity(
        days=all_days,
        detected=[counts.get((d.isoformat(), EventKind.DETECTED.value), 0) for d in all_days],
        resolved=[counts.get((d.isoformat(), EventKind.RESOLVED.value), 0) for d in all_days],
    )

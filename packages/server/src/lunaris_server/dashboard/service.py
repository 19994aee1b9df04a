"""The dashboard's figures: one aggregate query over the devices, and the daily counters."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.core.liveness import Liveness
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import UpdateActivity

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
    not_scanned: int
    """Devices with no scan that worked yet."""


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
                count_where(Device.last_good_scan_at.is_(None)),
            ).where(Device.revoked_at.is_(None))
        )
    ).one()
    devices, online, with_updates, pending, scan_errors, not_scanned = (int(v) for v in row)
    return FleetStats(
        devices=devices,
        online=online,
        offline=devices - online,
        with_updates=with_updates,
        pending_updates=pending,
        scan_errors=scan_errors,
        not_scanned=not_scanned,
    )


@dataclass(frozen=True, slots=True)
class DailyActivity:
    days: list[date]
    detected: list[int]
    resolved: list[int]


async def daily_activity(
    session: AsyncSession, *, now: datetime, days: int = ACTIVITY_DAYS
) -> DailyActivity:
    """Updates detected and resolved per UTC day over the last ``days`` days (today included),
    from the daily counters the report diff keeps (``updates.fleet_counts``)."""
    first_day = now.astimezone(UTC).date() - timedelta(days=days - 1)
    rows = await session.execute(
        select(
            UpdateActivity.day,
            func.sum(UpdateActivity.detected),
            func.sum(UpdateActivity.resolved),
        )
        .where(UpdateActivity.day >= first_day)
        .group_by(UpdateActivity.day)
    )
    counts = {day: (int(detected), int(resolved)) for day, detected, resolved in rows}
    all_days = [first_day + timedelta(days=i) for i in range(days)]
    return DailyActivity(
        days=all_days,
        detected=[counts.get(d, (0, 0))[0] for d in all_days],
        resolved=[counts.get(d, (0, 0))[1] for d in all_days],
    )

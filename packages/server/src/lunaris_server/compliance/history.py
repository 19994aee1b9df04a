"""The daily history: once a UTC day, the figures of the fleet and of each group are kept in
``compliance_daily`` (400 days), for the dashboard's 90-day chart and the API.

Exactly once across processes: the fleet's row is the claim. It is inserted (``ON CONFLICT
DO NOTHING`` on the day and scope) in the transaction that writes the groups' rows, so of
two processes the second waits for the first's commit, inserts nothing and stops; a run
that failed mid-way left no row, and the next run writes the day.
"""

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.compliance import service as compliance
from lunaris_server.compliance.models import ComplianceDay
from lunaris_server.db.queries import insert_missing
from lunaris_server.devices import groups as device_groups
from lunaris_server.realtime import outbox
from lunaris_server.web.state import AppState

KEEP_DAYS = 400
MAX_DAYS = KEEP_DAYS

log = structlog.get_logger("lunaris.compliance")


def _row(day: date, group_id: int | None, figures: compliance.Figures, now: datetime) -> Any:
    return {"day": day, "group_id": group_id, "taken_at": now, **asdict(figures)}


async def snapshot(session: AsyncSession, *, now: datetime) -> bool:
    """Writes today's rows unless they are there; True when this call wrote them."""
    day = now.astimezone(UTC).date()
    table: Any = ComplianceDay.__table__
    taken = await session.scalar(
        select(ComplianceDay.id).where(ComplianceDay.day == day, ComplianceDay.group_id.is_(None))
    )
    if taken is not None:
        return False
    fleet = await compliance.figures(
        session, await compliance.scope(session, group_id=None, now=now)
    )
    if await insert_missing(session, table, [_row(day, None, fleet, now)]) != 1:
        return False
    rows = []
    for group in await device_groups.list_groups(session):
        scope = await compliance.scope(session, group_id=group.id, now=now)
        rows.append(_row(day, group.id, await compliance.figures(session, scope), now))
    await insert_missing(session, table, rows)
    await session.execute(
        delete(ComplianceDay).where(ComplianceDay.day <= day - timedelta(days=KEEP_DAYS))
    )
    return True


async def snapshot_once(state: AppState) -> bool:
    """The periodic job: today's snapshot, if no process wrote it yet."""
    async with state.database.session() as session:
        written = await snapshot(session, now=state.clock())
        if not written:
            await session.rollback()
            return False
        await outbox.commit(session, state)
    log.info("compliance snapshot written")
    return True


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    figures: compliance.Figures


def _day_figures(row: ComplianceDay) -> DayFigures:
    figures = {f.name: getattr(row, f.name) for f in fields(compliance.Figures)}
    return DayFigures(day=row.day, figures=compliance.Figures(**figures))


async def latest_of_groups(session: AsyncSession) -> dict[int, DayFigures]:
    """Each group's figures in the latest snapshot (by group id)."""
    latest = select(func.max(ComplianceDay.day)).scalar_subquery()
    rows = await session.scalars(
        select(ComplianceDay).where(
            ComplianceDay.day == latest, ComplianceDay.group_id.is_not(None)
        )
    )
    return {row.group_id: _day_figures(row) for row in rows if row.group_id is not None}


async def history(
    session: AsyncSession, *, group_id: int | None, days: int, now: datetime
) -> list[DayFigures]:
    """The snapshots of the last ``days`` UTC days (today included), oldest first; days
    without one (the server was down) are left out."""
    if group_id is not None:
        await device_groups.get_group(session, group_id=group_id)
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    scope = (
        ComplianceDay.group_id.is_(None) if group_id is None else ComplianceDay.group_id == group_id
    )
    rows = await session.scalars(
        select(ComplianceDay).where(scope, ComplianceDay.day >= first).order_by(ComplianceDay.day)
    )
    return [_day_figures(row) for row in rows]

"""The compliance figures as the console shows them (the dashboard's card and the Compliance
page): each figure with the CSV of its rows and, where there is one, the device list, and
the compliant share per day as a chart."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.compliance import history
from lunaris_server.compliance import service as compliance
from lunaris_server.compliance.figures_cache import FiguresCache
from lunaris_server.compliance.service import Figure, Figures
from lunaris_server.console.charts import Series
from lunaris_server.devices.models import DeviceGroup

CHART_DAYS = 90


@dataclass(frozen=True, slots=True)
class Stat:
    key: str
    label: str
    value: int
    tone: str
    csv: str | None
    """The CSV of the device x package rows behind the figure."""
    devices: str | None
    """The device list it narrows to."""


@dataclass(frozen=True, slots=True)
class Panel:
    group: DeviceGroup | None
    figures: Figures
    stats: list[Stat]
    day_labels: list[str]
    series: list[Series]
    """The compliant share (percent) per day with a snapshot."""
    query: str
    """``?group_id=N`` for a group's panel, "" for the fleet's."""


def _csv(group_id: int | None, figure: Figure) -> str:
    query: dict[str, object] = {"figure": figure}
    if group_id is not None:
        query["group_id"] = group_id
    return f"/api/compliance/devices.csv?{urlencode(query)}"


def _devices(group_id: int | None, **filters: str) -> str:
    query: dict[str, object] = dict(filters)
    if group_id is not None:
        query["group_id"] = group_id
    return "/devices" + (f"?{urlencode(query)}" if query else "")


async def panel(
    session: AsyncSession, *, group_id: int | None, now: datetime, cache: FiguresCache
) -> Panel:
    scope = await compliance.scope(session, group_id=group_id, now=now)
    figures = await cache.figures(session, scope)
    days = await history.history(session, group_id=group_id, days=CHART_DAYS, now=now)
    stats = [
        Stat("devices", "Devices", figures.devices, "plain", None, _devices(group_id)),
        Stat("compliant", "Compliant", figures.compliant, "ok", None, None),
        Stat(
            "missing",
            "Missing updates",
            figures.missing,
            "warn",
            _csv(group_id, "missing"),
            _devices(group_id, has_updates="yes"),
        ),
        Stat(
            "not_scanned",
            "Not scanned yet",
            figures.not_scanned,
            "muted",
            None,
            _devices(group_id, has_updates="unscanned"),
        ),
        Stat("overdue", "Overdue", figures.overdue, "error", _csv(group_id, "overdue"), None),
        Stat(
            "age_0_7", "Waiting 0–7 days", figures.age_0_7, "plain", _csv(group_id, "age_0_7"), None
        ),
        Stat("age_8_30", "8–30 days", figures.age_8_30, "warn", _csv(group_id, "age_8_30"), None),
        Stat(
            "age_over_30",
            "Over 30 days",
            figures.age_over_30,
            "error",
            _csv(group_id, "age_over_30"),
            None,
        ),
    ]
    # A day with no devices has no share to chart.
    days = [d for d in days if d.figures.devices]
    shares = [round(100 * d.figures.compliant / d.figures.devices) for d in days]
    return Panel(
        group=scope.group,
        figures=figures,
        stats=stats,
        day_labels=[d.day.strftime("%b %d") for d in days],
        series=[Series("Compliant %", shares, "tone-ok")] if days else [],
        query=f"?group_id={group_id}" if group_id is not None else "",
    )

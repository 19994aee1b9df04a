"""The dashboard's figures shaped as chart input (bars link to the lists behind them)."""

from dataclasses import dataclass
from urllib.parse import urlencode

from lunaris_server.console.charts import Bar, Series
from lunaris_server.dashboard.service import DailyActivity, FleetStats
from lunaris_server.updates.queries import FleetUpdate


@dataclass(frozen=True, slots=True)
class DashboardCharts:
    status: list[Bar]
    packages: list[Bar]
    day_labels: list[str]
    activity: list[Series]


def dashboard_charts(
    stats: FleetStats, top_packages: list[FleetUpdate], activity: DailyActivity
) -> DashboardCharts:
    def waiting_devices_url(update: FleetUpdate) -> str:
        query = {"package": update.package_identifier}
        if update.source is not None:
            query["source"] = update.source
        return f"/updates/devices?{urlencode(query)}"

    return DashboardCharts(
        status=[
            Bar("Online", stats.online, "/devices?status=online", "tone-ok"),
            Bar("Offline", stats.offline, "/devices?status=offline", "tone-muted"),
        ],
        packages=[
            Bar(u.name or u.package_identifier, u.devices, waiting_devices_url(u), "tone-warn")
            for u in top_packages
        ],
        day_labels=[day.strftime("%b %d") for day in activity.days],
        activity=[
            Series("Detected", activity.detected, "tone-warn"),
            Series("Resolved", activity.resolved, "tone-ok"),
        ],
    )

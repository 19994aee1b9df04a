"""The dashboard: the fleet at a glance, and its fragments for live refreshes."""

from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from lunaris_server.accounts.deps import ConsoleUser
from lunaris_server.compliance.figures_cache import FiguresCache
from lunaris_server.compliance.panel import panel as compliance_panel
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.dashboard import service as dashboard
from lunaris_server.dashboard.charts import dashboard_charts
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.views import device_view
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates.queries import FleetQuery
from lunaris_server.web.deps import NowDep, SessionDep, StateDep

router = APIRouter(include_in_schema=False)

TOP_PACKAGES = 10
RECENT_DEVICES = 8

DashboardFragment = Literal["stats", "compliance", "charts", "recent"]


async def _context(
    fragment: DashboardFragment | None, session: SessionDep, state: StateDep, now: NowDep
) -> dict[str, object]:
    """What the whole page (``None``) or one of its fragments shows; each is queried only
    when shown."""
    context: dict[str, object] = {}
    if fragment in (None, "stats", "charts"):
        stats = await dashboard.fleet_stats(session, liveness=state.liveness, now=now)
        context["stats"] = stats
    if fragment in (None, "charts"):
        top_packages, _ = await update_queries.fleet_updates(
            session, query=FleetQuery(limit=TOP_PACKAGES)
        )
        activity = await dashboard.daily_activity(session, now=now)
        context["charts"] = dashboard_charts(stats, top_packages, activity)
    if fragment in (None, "compliance"):
        cache = state.part(FiguresCache)
        context["compliance"] = await compliance_panel(session, group_id=None, now=now, cache=cache)
    if fragment in (None, "recent"):
        recent = await device_queries.recently_seen(session, limit=RECENT_DEVICES)
        context["recent"] = [device_view(d, state, now) for d in recent]
    return context


@router.get("/")
async def dashboard_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    context = await _context(None, session, state, now)
    return console.render(request, "pages/dashboard/index.html", context)


@router.get("/dashboard/{fragment}")
async def dashboard_fragment(
    fragment: DashboardFragment,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    context = await _context(fragment, session, state, now)
    return console.render(request, f"partials/dashboard/{fragment}.html", context)

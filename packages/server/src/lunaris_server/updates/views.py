"""Console pages for updates: the fleet-wide table (and its CSV), and the devices waiting
for one package."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from lunaris_server.accounts.deps import ConsoleUser
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.console.htmx import wants_fragment
from lunaris_server.console.paging import PER_PAGE, Pager
from lunaris_server.devices.views import device_view
from lunaris_server.updates import fleet_devices, rule_store
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates.queries import FleetQuery
from lunaris_server.web.deps import NowDep, SessionDep, StateDep

router = APIRouter(include_in_schema=False)


def fleet_query(
    q: Annotated[str, Query(max_length=256)] = "",
    source: Annotated[str, Query(max_length=64)] = "",
    sort: Annotated[str, Query(max_length=32)] = "-devices",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> FleetQuery:
    """The table's state, as the URL holds it."""
    sort_by, descending = FleetQuery.parse_sort(sort)
    return FleetQuery(
        search=q.strip() or None,
        source=source or None,
        sort=sort_by,
        descending=descending,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )


FleetQueryDep = Annotated[FleetQuery, Depends(fleet_query)]


@router.get("/updates")
async def updates_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    query: FleetQueryDep,
) -> Response:
    rows, total = await update_queries.fleet_updates(session, query=query)
    book = await rule_store.load_book(session)
    everywhere = frozenset(book.group_names)
    context = {
        "rows": rows,
        "decisions": [
            book.decide(
                package=u.package_identifier,
                source=u.source,
                available_version=u.available_version or "",
            )
            for u in rows
        ],
        "group_rules": [
            sum(
                rule.group_id is not None
                for rule in book.matching(
                    package=u.package_identifier, source=u.source, group_ids=everywhere
                )
            )
            for u in rows
        ],
        "pager": Pager(query.offset // PER_PAGE + 1, PER_PAGE, total),
        "filters": request.query_params,
        "sort": ("-" if query.descending else "") + query.sort.value,
        "filtered": bool(query.search or query.source),
    }
    fragment = wants_fragment(request)
    template = "partials/updates/table.html" if fragment else "pages/updates/list.html"
    return console.render(request, template, context)


@router.get("/updates.csv")
async def updates_csv(_user: ConsoleUser, session: SessionDep, query: FleetQueryDep) -> Response:
    body = await fleet_devices.fleet_updates_csv(session, query=query)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="lunaris-updates.csv"'},
    )


@router.get("/updates/devices")
async def package_devices_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    package: Annotated[str, Query(min_length=1, max_length=256)],
    source: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    preview = None
    if _user.is_admin and not package.endswith("…"):
        preview = await update_queries.run_preview(
            session, package=package, source=source, offline_before=state.liveness.cutoff(now)
        )
    rows, total = await fleet_devices.devices_waiting_for(
        session,
        package_identifier=package,
        source=source,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    context = {
        "package": package,
        "source": source,
        "rows": [{**device_view(device, state, now), "waiting": row} for device, row in rows],
        "pager": Pager(page, PER_PAGE, total),
        "preview": preview,
    }
    template = (
        "partials/updates/package_devices.html"
        if wants_fragment(request)
        else "pages/updates/package_devices.html"
    )
    return console.render(request, template, context)

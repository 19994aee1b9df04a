"""Console pages for the inventory: every app in the fleet (with the version-range search),
one app's spread of versions and its devices, one device's installed list, and their CSV."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from lunaris_server.accounts.deps import ConsoleUser
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.console.htmx import wants_fragment
from lunaris_server.console.paging import PER_PAGE, Pager
from lunaris_server.core.errors import InvalidInput, NotFound
from lunaris_server.devices import service as devices
from lunaris_server.devices.views import canonical_id, device_view
from lunaris_server.software import export, queries
from lunaris_server.software.api import BoundsDep, ScopeDep
from lunaris_server.software.ranges import (
    MAX_SEARCH,
    SoftwareSearch,
    as_params,
    parse_search,
)
from lunaris_server.web.deps import NowDep, SessionDep, StateDep

router = APIRouter(include_in_schema=False)

COUNTED_UP_TO = 10_000
"""The Software page counts this many apps at most ("more than 10,000": a search narrows
them); the API counts every one."""

Page = Annotated[int, Query(ge=1, le=1_000_000)]
Search = Annotated[str, Query(max_length=MAX_SEARCH)]


async def _csv(session: AsyncSession, body: export.Rows, filename: str) -> StreamingResponse:
    """The body reads with sessions of its own, batch by batch; the request's session (the
    login's check) lets go of its connection first, or a stream would hold two."""
    await session.close()
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/software")
async def software_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    q: Search = "",
    page: Page = 1,
) -> Response:
    fragment = wants_fragment(request)
    try:
        search = parse_search(q)
    except InvalidInput as error:
        # Shown where the results would be (the API answers 422): typing a range half-way
        # shows what is missing.
        context: dict[str, object] = {
            "rows": [],
            "search": None,
            "search_error": error.message,
            "q": q,
            "pager": Pager(1, PER_PAGE, 0),
        }
        template = "partials/software/table.html" if fragment else "pages/software/list.html"
        return console.render(request, template, context)
    rows, total = await queries.fleet_apps(
        session,
        search=search,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
        count_up_to=COUNTED_UP_TO,
    )
    context = {
        "rows": rows,
        "search": search,
        "search_error": None,
        "q": q,
        "range_query": "?" + urlencode(as_params(search.bounds)) if search.bounds else "",
        "pager": Pager(page, PER_PAGE, min(total, COUNTED_UP_TO)),
        "more": total > COUNTED_UP_TO,
    }
    template = "partials/software/table.html" if fragment else "pages/software/list.html"
    return console.render(request, template, context)


@router.get("/software.csv")
async def software_csv(
    _user: ConsoleUser, session: SessionDep, state: StateDep, q: Search = ""
) -> Response:
    search = parse_search(q)
    return await _csv(
        session, export.fleet_apps_csv(state.database, search), "lunaris-software.csv"
    )


@router.get("/software/{package:path}/devices.csv")
async def app_devices_csv(
    package: str,
    _user: ConsoleUser,
    session: SessionDep,
    state: StateDep,
    bounds: BoundsDep,
    scope: ScopeDep = None,
) -> Response:
    if await queries.app_title(session, package) is None:
        raise NotFound(f"no device has {package!r} installed")
    body = export.app_devices_csv(state.database, package, bounds, scope)
    return await _csv(session, body, "lunaris-software-devices.csv")


@router.get("/software/{package:path}")
async def app_page(
    package: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    bounds: BoundsDep,
    scope: ScopeDep = None,
    page: Page = 1,
) -> Response:
    title = await queries.app_title(session, package)
    if title is None:
        raise NotFound(f"no device has {package!r} installed")
    rows, total = await queries.devices_with(
        session,
        package_identifier=package,
        bounds=bounds,
        scope=scope,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    context = {
        "title": title,
        "scope": scope,
        "bounds": bounds,
        "range": SoftwareSearch(term="", bounds=bounds).text,
        "versions": await queries.app_versions(session, package_identifier=package, bounds=bounds),
        "rows": [{**device_view(row.device, state, now), "app": row} for row in rows],
        "pager": Pager(page, PER_PAGE, total),
        "path": request.url.path,
    }
    template = (
        "partials/software/app_devices.html"
        if wants_fragment(request)
        else "pages/software/app.html"
    )
    return console.render(request, template, context)


@router.get("/devices/{device_id}/installed")
async def device_installed_page(
    device_id: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    device = await devices.get_device(session, device_id=canonical_id(device_id))
    context = {
        **device_view(device, state, now),
        "software": await queries.device_software(session, device_id=device.id),
        "inventory": await queries.device_inventory(session, device_id=device.id),
    }
    fragment = wants_fragment(request)
    template = (
        "partials/software/device_installed.html" if fragment else "pages/software/device.html"
    )
    return console.render(request, template, context)


@router.get("/devices/{device_id}/installed.csv")
async def device_installed_csv(
    device_id: str, _user: ConsoleUser, session: SessionDep, state: StateDep
) -> Response:
    device = await devices.get_device(session, device_id=canonical_id(device_id))
    return await _csv(
        session,
        export.device_software_csv(state.database, device.id),
        f"lunaris-installed-{device.id}.csv",
    )

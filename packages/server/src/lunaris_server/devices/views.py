"""Console pages for devices: the fleet list (search, filters, sort, pages, CSV) and its rows,
and revoking a device. One device's page is in dashboard/device_page.py: it shows the
device's updates and commands too."""

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lunaris_protocol import DeviceStatus
from lunaris_protocol.tags import MAX_TAG, normalise_tag, normalise_tags, split_tags
from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.console.deps import CheckedFields, CheckedForm, ConsoleDep
from lunaris_server.console.forms import parsed
from lunaris_server.console.htmx import wants_fragment
from lunaris_server.console.paging import PER_PAGE, Pager, decode_cursor
from lunaris_server.core.errors import InvalidInput, NotFound
from lunaris_server.devices import export, groups
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices import service as devices
from lunaris_server.devices import tags as tag_service
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device
from lunaris_server.devices.queries import DeviceQuery, DeviceSelection
from lunaris_server.devices.tags import Tags, tags_of
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

YesNo = Literal["yes", "no", ""]
FILTERS = ("q", "status", "has_updates", "has_scan_error", "group_id", "tag")
RENAMED_FILTERS = {"scan_error": "has_scan_error"}
"""Filter names the console used before it named them as the API does; sent to the new."""


def device_query(
    q: Annotated[str, Query(max_length=256)] = "",
    status: Annotated[Literal["online", "offline", ""], Query()] = "",
    has_updates: Literal["yes", "no", "unscanned", ""] = "",
    has_scan_error: YesNo = "",
    group_id: Annotated[str, Query(max_length=12, pattern=r"^\d*$")] = "",
    tag: Annotated[str, Query(max_length=MAX_TAG)] = "",
    sort: Annotated[str, Query(max_length=32)] = "hostname",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    after: Annotated[str, Query(max_length=1024)] = "",
    before: Annotated[str, Query(max_length=1024)] = "",
) -> DeviceQuery:
    """The list's state, as the URL holds it. The pager's links carry the place where the
    next (``after``) or previous (``before``) page starts, so paging never skips rows."""
    sort_by, descending = DeviceQuery.parse_sort(sort)
    return DeviceQuery(
        search=q.strip() or None,
        status=DeviceStatus(status) if status else None,
        has_updates={"yes": True, "no": False}.get(has_updates),
        has_scan_error={"yes": True, "no": False}.get(has_scan_error),
        scanned=False if has_updates == "unscanned" else None,
        group_id=int(group_id) if group_id else None,
        tag=_tag(tag) if tag else None,
        sort=sort_by,
        descending=descending,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
        after=decode_cursor(after) if after else None,
        before=decode_cursor(before) if before and not after else None,
    )


def _tag(text: str) -> str:
    try:
        return normalise_tag(text)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


DeviceQueryDep = Annotated[DeviceQuery, Depends(device_query)]


def renamed_filters_redirect(request: Request) -> Response | None:
    """A bookmarked address with an old filter name goes to the same list under the new one."""
    if not any(old in request.query_params for old in RENAMED_FILTERS):
        return None
    query = request.query_params
    params = [(name, value) for name, value in query.multi_items() if name not in RENAMED_FILTERS]
    for old, new in RENAMED_FILTERS.items():
        if old in query and new not in query:
            params.append((new, query[old]))
    return RedirectResponse(f"{request.url.path}?{urlencode(params)}", status_code=301)


def device_view(
    device: Device, state: AppState, now: datetime, tags: Tags | None = None
) -> dict[str, object]:
    """A device with what the templates show beside its columns (its tags, where read)."""
    return {
        "device": device,
        "status": state.liveness.status(device, now).value,
        "connected": state.realtime.agents.location(device.id) is not None,
        "tags": tags,
    }


async def device_rows(
    session: AsyncSession, devices: list[Device], state: AppState, now: datetime
) -> list[dict[str, object]]:
    """The views of a list's devices, with their tags (one query for the page)."""
    found = await tags_of(session, (d.id for d in devices))
    return [device_view(d, state, now, found[d.id]) for d in devices]


@router.get("/devices")
async def devices_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    query: DeviceQueryDep,
) -> Response:
    if (moved := renamed_filters_redirect(request)) is not None:
        return moved
    found = await device_queries.device_page(session, query=query, liveness=state.liveness, now=now)
    context = {
        "rows": await device_rows(session, found.devices, state, now),
        "groups": await groups.list_groups(session),
        "pager": Pager.seeking(
            offset=query.offset, total=found.total, first=found.first, last=found.last
        ),
        "filters": request.query_params,
        "sort": ("-" if query.descending else "") + query.sort.value,
        "filtered": any(request.query_params.get(k) for k in FILTERS),
    }
    fragment = wants_fragment(request)
    template = "partials/devices/table.html" if fragment else "pages/devices/list.html"
    return console.render(request, template, context)


@router.get("/devices.csv")
async def devices_csv(
    request: Request,
    _user: ConsoleUser,
    state: StateDep,
    now: NowDep,
    session: SessionDep,
    query: DeviceQueryDep,
) -> Response:
    if (moved := renamed_filters_redirect(request)) is not None:
        return moved
    body = await export.devices_csv(session, query=query, liveness=state.liveness, now=now)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="lunaris-devices.csv"'},
    )


def canonical_id(device_id: str) -> str:
    try:
        return str(UUID(device_id))
    except ValueError:
        raise NotFound(f"no device with id {device_id}") from None


@router.post("/devices/{device_id}/revoke")
async def revoke_device(
    device_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """Revoke and forget: the device's token stops working, its open commands are closed,
    and it leaves the console. Enrolling it again brings it back, unless the form asked to
    block that (``reenrollment=block``: a stolen PC)."""
    choice = form.get("reenrollment", "allow")
    if choice not in ("allow", "block"):
        raise InvalidInput("reenrollment is allow or block")
    canonical = canonical_id(device_id)
    await devices.revoke(
        session,
        device_id=canonical,
        now=now,
        actor=user_actor(request, admin),
        lifecycle=state.part(DeviceLifecycle),
        block=choice == "block",
    )
    await work.commit()
    return RedirectResponse("/devices", status_code=303)


def selection_of_form(fields: list[tuple[str, str]]) -> tuple[DeviceSelection, dict[str, str]]:
    """The devices a bulk form names: those ticked (``device_id`` fields), or all that the
    list's filters match (``scope=matching``, the filters as ``filter_<name>`` fields); and
    those filters, to go back to the same list."""
    form = dict(fields)
    filters = {
        name: form[f"filter_{name}"] for name in FILTERS if form.get(f"filter_{name}", "").strip()
    }
    if form.get("scope") == "matching":
        matching = {
            name: {"yes": True, "no": False}.get(value, value) for name, value in filters.items()
        }
        if matching.get("has_updates") == "unscanned":
            # The list's "Not scanned yet" is the API's scanned=false.
            del matching["has_updates"]
            matching["scanned"] = False
        data: dict[str, object] = {"matching": matching}
    else:
        ticked = [value for name, value in fields if name == "device_id"]
        if not ticked:
            raise InvalidInput("tick some devices first, or choose all matching")
        data = {"device_ids": ticked}
    selection = parsed(DeviceSelection, data, {"matching": "Filters", "device_ids": "Devices"})
    return selection, filters


@router.post("/devices/bulk-tags")
async def bulk_tags(
    request: Request,
    fields: CheckedFields,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """Adds or removes admin tags on the devices ticked, or on all the list's filters match
    (``scope=matching``, the filters as ``filter_<name>`` fields); back to the same list."""
    form = dict(fields)
    selection, filters = selection_of_form(fields)
    change = form.get("change")
    if change not in ("add", "remove"):
        raise InvalidInput("change is add or remove")
    try:
        tags = normalise_tags(split_tags(form.get("tags", "")))
    except ValueError as error:
        raise InvalidInput(f"Tags: {error}") from None
    device_ids = await device_queries.selected_ids(
        session, selection=selection, liveness=state.liveness, now=now
    )
    await tag_service.change_admin_tags(
        session,
        device_ids=device_ids,
        add=tags if change == "add" else [],
        remove=tags if change == "remove" else [],
        actor=user_actor(request, admin),
        now=now,
        selection=selection.described(),
    )
    await work.commit()
    return RedirectResponse(f"/devices?{urlencode(filters)}" if filters else "/devices", 303)


@router.post("/devices/{device_id}/tags")
async def set_tags(
    device_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    """The device page's tags form: the admin tags, comma-separated, from now on."""
    device = await devices.get_device(session, device_id=canonical_id(device_id))
    try:
        tags = normalise_tags(split_tags(form.get("tags", "")))
    except ValueError as error:
        raise InvalidInput(f"Tags: {error}") from None
    await tag_service.set_admin_tags(
        session, device_id=device.id, tags=tags, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return RedirectResponse(f"/devices/{device.id}", status_code=303)

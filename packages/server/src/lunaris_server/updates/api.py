"""Console JSON API for updates: one device's list and history, and the fleet view."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from lunaris_server.accounts.deps import CurrentUser
from lunaris_server.devices import service as devices
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates.queries import FleetQuery
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import SessionDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.scope import ScopedOut

router = APIRouter(prefix="/api", tags=["updates"], responses=error_responses(401, 422))


class DeviceUpdateOut(ScopedOut):
    package_identifier: str
    name: str
    installed_version: str
    available_version: str
    source: str | None
    explicit_targeting: bool
    truncated: bool
    instances: int
    first_seen_at: datetime


class DeviceUpdatesOut(BaseModel):
    items: list[DeviceUpdateOut]
    total: int


class UpdateEventOut(BaseModel):
    kind: str
    package_identifier: str
    source: str | None
    from_version: str | None
    to_version: str | None
    details: dict[str, object] | None
    at: datetime
    command_id: str | None


class FleetUpdateOut(BaseModel):
    package_identifier: str
    source: str | None
    name: str
    devices: int
    installed_versions: list[str]
    available_version: str | None
    explicit_targeting: bool
    truncated: bool


@router.get("/devices/{device_id}/updates", responses=error_responses(404))
async def list_device_updates(
    device_id: UUID, _user: CurrentUser, session: SessionDep
) -> DeviceUpdatesOut:
    device = await devices.get_device(session, device_id=str(device_id))
    rows = await update_queries.device_updates(session, device_id=device.id)
    items = [DeviceUpdateOut.model_validate(row, from_attributes=True) for row in rows]
    return DeviceUpdatesOut(items=items, total=len(items))


@router.get("/devices/{device_id}/events", responses=error_responses(404))
async def list_device_events(
    device_id: UUID, _user: CurrentUser, session: SessionDep, page: PageDep
) -> Paginated[UpdateEventOut]:
    device = await devices.get_device(session, device_id=str(device_id))
    rows, total = await update_queries.device_events(
        session, device_id=device.id, limit=page.limit, offset=page.offset
    )
    return Paginated(
        items=[UpdateEventOut.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/updates")
async def list_fleet_updates(
    _user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=256, description="package id or name contains")] = (
        None
    ),
    source: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[str, Query(max_length=32, description="field, '-field' descending")] = (
        "-devices"
    ),
) -> Paginated[FleetUpdateOut]:
    sort_by, descending = FleetQuery.parse_sort(sort)
    query = FleetQuery(
        search=q,
        source=source,
        sort=sort_by,
        descending=descending,
        limit=page.limit,
        offset=page.offset,
    )
    rows, total = await update_queries.fleet_updates(session, query=query)
    return Paginated(
        items=[FleetUpdateOut.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )

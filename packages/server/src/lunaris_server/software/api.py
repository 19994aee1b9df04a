"""Console JSON API for the inventory: the fleet's apps (with a version-range search), the
devices that have one (in a range), and one device's installed list."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from lunaris_protocol import Scope
from lunaris_server.accounts.deps import CurrentUser
from lunaris_server.core.errors import NotFound
from lunaris_server.devices import service as devices
from lunaris_server.software import queries
from lunaris_server.software.ranges import MAX_SEARCH, Bound, bounds_from, parse_search
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import SessionDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.scope import ScopedOut

router = APIRouter(prefix="/api", tags=["software"], responses=error_responses(401, 422))

Version = Annotated[str | None, Query(min_length=1, max_length=128)]


def version_bounds(
    version: Version = None,
    version_lt: Version = None,
    version_lte: Version = None,
    version_gt: Version = None,
    version_gte: Version = None,
) -> tuple[Bound, ...]:
    """A version range from the query (``version_lt=8.8``), as winget orders versions."""
    return bounds_from(
        version=version,
        version_lt=version_lt,
        version_lte=version_lte,
        version_gt=version_gt,
        version_gte=version_gte,
    )


BoundsDep = Annotated[tuple[Bound, ...], Depends(version_bounds)]
ScopeDep = Annotated[
    Scope | None,
    Query(description="only the installs for the machine, or only those in users' profiles"),
]


class FleetAppOut(BaseModel):
    package_identifier: str
    name: str
    devices: int
    versions: int
    matching: int | None


class AppDeviceOut(ScopedOut):
    device_id: str
    hostname: str
    version: str
    source: str | None
    instances: int
    first_seen_at: datetime


class InstalledOut(ScopedOut):
    package_identifier: str
    name: str
    version: str
    source: str | None
    truncated: bool
    instances: int
    first_seen_at: datetime


class DeviceSoftwareOut(BaseModel):
    items: list[InstalledOut]
    total: int
    reported_at: datetime | None
    error_message: str | None


@router.get("/software")
async def list_software(
    _user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_SEARCH,
            description="id or name contains, then an optional version range: "
            "'Notepad++.Notepad++ < 8.8', '7zip.7zip <= 23.01', 'Java >= 8, < 9'",
        ),
    ] = "",
) -> Paginated[FleetAppOut]:
    search = parse_search(q)
    rows, total = await queries.fleet_apps(
        session, search=search, limit=page.limit, offset=page.offset
    )
    return Paginated(
        items=[FleetAppOut.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/software/{package:path}/devices", responses=error_responses(404))
async def list_app_devices(
    package: str,
    _user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    bounds: BoundsDep,
    scope: ScopeDep = None,
) -> Paginated[AppDeviceOut]:
    """The devices with the app installed in a version inside every bound given (versions
    compare as winget orders them), oldest version first."""
    if await queries.app_title(session, package) is None:
        raise NotFound(f"no device has {package!r} installed")
    rows, total = await queries.devices_with(
        session,
        package_identifier=package,
        bounds=bounds,
        scope=scope,
        limit=page.limit,
        offset=page.offset,
    )
    return Paginated(
        items=[
            AppDeviceOut(
                device_id=row.device.id,
                hostname=row.device.hostname,
                version=row.version,
                source=row.source,
                instances=row.instances,
                first_seen_at=row.first_seen_at,
                scope=row.scope,
                user_account=row.user_account,
            )
            for row in rows
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/devices/{device_id}/software", responses=error_responses(404))
async def list_device_software(
    device_id: UUID, _user: CurrentUser, session: SessionDep
) -> DeviceSoftwareOut:
    device = await devices.get_device(session, device_id=str(device_id))
    rows = await queries.device_software(session, device_id=device.id)
    inventory = await queries.device_inventory(session, device_id=device.id)
    return DeviceSoftwareOut(
        items=[InstalledOut.model_validate(row, from_attributes=True) for row in rows],
        total=len(rows),
        reported_at=inventory.reported_at if inventory else None,
        error_message=inventory.error_message if inventory else None,
    )

"""Console JSON API for device groups: their definitions, and the devices in each now."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.devices import groups
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.api import DeviceOut, device_out
from lunaris_server.devices.groups import GroupSpec
from lunaris_server.devices.models import DeviceGroup
from lunaris_server.devices.queries import DeviceQuery
from lunaris_server.devices.tags import tags_of
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api/groups", tags=["groups"], responses=error_responses(401, 422))


class GroupOut(BaseModel):
    id: int
    name: str
    description: str
    hostname_glob: str | None
    os_contains: str | None
    tags: list[str]
    tags_match: str
    tag_source: str
    enrollment_secret_id: int | None
    device_ids: list[str]
    """The devices the group lists explicitly."""
    devices: int
    """Enrolled devices in the group now (by its rule or its list)."""
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, group: DeviceGroup, *, listed: list[str], devices: int) -> "GroupOut":
        return cls(
            id=group.id,
            name=group.name,
            description=group.description,
            hostname_glob=group.hostname_glob,
            os_contains=group.os_contains,
            tags=group.tags or [],
            tags_match=group.tags_match,
            tag_source=group.tag_source,
            enrollment_secret_id=group.enrollment_secret_id,
            device_ids=listed,
            devices=devices,
            created_at=group.created_at,
            created_by=group.created_by,
            updated_at=group.updated_at,
            updated_by=group.updated_by,
        )


async def groups_out(session: AsyncSession, found: list[DeviceGroup]) -> list[GroupOut]:
    counts = await groups.member_counts(session, found)
    listed = await groups.listed_devices(session, [g.id for g in found])
    return [GroupOut.of(g, listed=listed[g.id], devices=counts[g.id]) for g in found]


async def group_out(session: AsyncSession, group: DeviceGroup) -> GroupOut:
    return (await groups_out(session, [group]))[0]


@router.get("")
async def list_groups(_user: CurrentUser, session: SessionDep) -> list[GroupOut]:
    return await groups_out(session, await groups.list_groups(session))


@router.post("", status_code=201, responses={**BODY_ERRORS, **error_responses(403, 409)})
async def create_group(
    body: GroupSpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> GroupOut:
    group = await groups.create_group(session, spec=body, actor=user_actor(request, admin), now=now)
    await work.commit()
    return await group_out(session, group)


@router.get("/{group_id}", responses=error_responses(404))
async def get_group(group_id: RowId, _user: CurrentUser, session: SessionDep) -> GroupOut:
    return await group_out(session, await groups.get_group(session, group_id=group_id))


@router.put("/{group_id}", responses={**BODY_ERRORS, **error_responses(403, 404, 409)})
async def update_group(
    group_id: RowId,
    body: GroupSpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> GroupOut:
    """Replaces the group's definition (its rule and its list) as a whole."""
    group = await groups.update_group(
        session, group_id=group_id, spec=body, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return await group_out(session, group)


@router.delete("/{group_id}", status_code=204, responses=error_responses(403, 404))
async def delete_group(
    group_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> None:
    await groups.delete_group(session, group_id=group_id, actor=user_actor(request, admin), now=now)
    await work.commit()


@router.get("/{group_id}/devices", responses=error_responses(404))
async def group_devices(
    group_id: RowId,
    _user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    page: PageDep,
    status: DeviceStatus | None = None,
    sort: Annotated[str, Query(max_length=32, description="field, '-field' descending")] = (
        "hostname"
    ),
) -> Paginated[DeviceOut]:
    """The enrolled devices in the group now, as ``GET /api/devices?group_id=`` lists them."""
    sort_by, descending = DeviceQuery.parse_sort(sort)
    await groups.get_group(session, group_id=group_id)
    rows, total = await device_queries.list_devices(
        session,
        query=DeviceQuery(
            group_id=group_id,
            status=status,
            sort=sort_by,
            descending=descending,
            limit=page.limit,
            offset=page.offset,
        ),
        liveness=state.liveness,
        now=now,
    )
    tags = await tags_of(session, (d.id for d in rows))
    return Paginated(
        items=[device_out(d, state, now, tags[d.id]) for d in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )

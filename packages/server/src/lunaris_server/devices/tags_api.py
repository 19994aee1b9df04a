"""Console JSON API for tags: one device's admin tags, and tags for a selection at once."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from lunaris_protocol.tags import TagList
from lunaris_server.accounts.deps import AdminUser, user_actor
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices import service as devices
from lunaris_server.devices import tags
from lunaris_server.devices.api import DeviceOut, device_out_of
from lunaris_server.devices.queries import DeviceSelection
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api/devices", tags=["devices"], responses=error_responses(401, 422))


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: TagList
    """The device's admin tags from now on (its agent's tags are its own)."""


class BulkTagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selection: DeviceSelection
    add: Annotated[TagList, Field(default_factory=list)]
    remove: Annotated[TagList, Field(default_factory=list)]


class BulkTagsOut(BaseModel):
    devices: int
    """Devices selected."""
    changed: int
    """Devices whose admin tags changed."""


@router.put("/{device_id}/tags", responses={**BODY_ERRORS, **error_responses(403, 404)})
async def set_tags(
    device_id: UUID,
    body: TagsIn,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeviceOut:
    """Replaces the admin tags of one enrolled device."""
    device = await devices.get_device(session, device_id=str(device_id))
    await tags.set_admin_tags(
        session, device_id=device.id, tags=body.tags, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return await device_out_of(session, device, state, now)


@router.post("/tags", responses={**BODY_ERRORS, **error_responses(403, 404)})
async def change_tags(
    body: BulkTagsIn,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> BulkTagsOut:
    """Adds and removes admin tags on every selected device, in one transaction."""
    device_ids = await device_queries.selected_ids(
        session, selection=body.selection, liveness=state.liveness, now=now
    )
    done = await tags.change_admin_tags(
        session,
        device_ids=device_ids,
        add=body.add,
        remove=body.remove,
        actor=user_actor(request, admin),
        now=now,
        selection=body.selection.described(),
    )
    await work.commit()
    return BulkTagsOut(devices=done.devices, changed=done.changed)

"""Console JSON API for a device's identity: re-enrolment requests, the clone flag, splitting
a cloned identity in two, merging a reimaged PC's old record into its new one."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, model_validator

from lunaris_protocol.agent import Hostname
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.devices import clones, reenrollments, splits
from lunaris_server.devices import merge as merging
from lunaris_server.devices import service as devices
from lunaris_server.devices.api import DeviceOut, device_out_of
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import DeviceSplit
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api/devices", tags=["devices"], responses=error_responses(401, 422))


class ReenrollmentOut(BaseModel):
    """A registration of this enrolled device id that came without proof."""

    id: int
    hostname: str
    os_version: str
    agent_version: str
    ip: str | None
    requested_at: datetime
    last_attempt_at: datetime
    attempts: int
    status: str
    """``pending`` or ``approved`` (the asking agent's next attempt registers)."""


@router.get("/{device_id}/reenrollments", responses=error_responses(404))
async def list_reenrollments(
    device_id: UUID, _user: CurrentUser, session: SessionDep
) -> list[ReenrollmentOut]:
    device = await devices.get_device(session, device_id=str(device_id))
    rows = await reenrollments.pending_reenrollments(session, device_id=device.id)
    return [ReenrollmentOut.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/{device_id}/reenrollments/{request_id}/{decision}", responses=error_responses(403, 404, 409)
)
async def decide_reenrollment(
    device_id: UUID,
    request_id: RowId,
    decision: Literal["approve", "refuse"],
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> ReenrollmentOut:
    """Approve: the agent that asked registers at its next attempt (and the device's current
    token stops working then). Refuse: that agent's attempts are refused from now on."""
    decided = await reenrollments.decide_reenrollment(
        session,
        device_id=str(device_id),
        request_id=request_id,
        approve=decision == "approve",
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return ReenrollmentOut.model_validate(decided, from_attributes=True)


@router.post("/{device_id}/clone-flag/clear", responses=error_responses(403, 404))
async def clear_clone_flag(
    device_id: UUID,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeviceOut:
    """It is one PC after all (it moved back and forth): the flag goes."""
    device = await clones.clear_flag(
        session, device_id=str(device_id), now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return await device_out_of(session, device, state, now)


class SplitIn(BaseModel):
    """The other PC, by the hostname it reports or (for clones that kept one hostname) the
    address it speaks from: one of those the flag shows."""

    model_config = ConfigDict(extra="forbid")

    hostname: Hostname | None = None
    address: str | None = None

    @model_validator(mode="after")
    def _one_of_them(self) -> "SplitIn":
        if (self.hostname is None) == (self.address is None):
            raise ValueError("give the other PC's hostname or its address, one of them")
        return self


class SplitOut(BaseModel):
    id: int
    hostname: str | None
    address: str | None
    requested_by: str
    requested_at: datetime
    status: str
    """``pending`` (waiting for the other PC's heartbeat), ``handed_over`` (it has its own
    identity, not used yet), ``completed`` or ``cancelled``."""
    new_device_id: str | None
    """The device the other PC became."""

    @classmethod
    def of(cls, split: DeviceSplit) -> "SplitOut":
        return cls.model_validate(split, from_attributes=True)


@router.post(
    "/{device_id}/split", status_code=201, responses=BODY_ERRORS | error_responses(403, 404, 409)
)
async def split_device(
    device_id: UUID,
    body: SplitIn,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> SplitOut:
    """Two PCs share this (cloned) identity: the one named gets a device of its own at its
    next heartbeat, the other keeps this record."""
    split = await splits.request_split(
        session,
        device_id=str(device_id),
        hostname=body.hostname,
        address=body.address,
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return SplitOut.of(split)


@router.get("/{device_id}/splits", responses=error_responses(404))
async def list_splits(device_id: UUID, _user: CurrentUser, session: SessionDep) -> list[SplitOut]:
    """This device's splits, newest first."""
    device = await devices.get_device(session, device_id=str(device_id))
    return [SplitOut.of(split) for split in await splits.history(session, device.id)]


@router.post("/{device_id}/split/cancel", responses=error_responses(403, 404, 409))
async def cancel_split(
    device_id: UUID,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeviceOut:
    """Withdraws a split the other PC has not taken yet."""
    device = await splits.cancel_split(
        session, device_id=str(device_id), now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return await device_out_of(session, device, state, now)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: UUID
    """The PC's old record (offline or revoked): its history joins this one."""


@router.post("/{device_id}/merge", responses=BODY_ERRORS | error_responses(403, 404, 409))
async def merge_device(
    device_id: UUID,
    body: MergeIn,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeviceOut:
    """This PC was reimaged and enrolled anew: its old record's history (update events and
    commands) moves to this one, and the old record is retired; its links lead here."""
    device = await merging.merge(
        session,
        old_device_id=str(body.device_id),
        new_device_id=str(device_id),
        liveness=state.liveness,
        now=now,
        actor=user_actor(request, admin),
        lifecycle=state.part(DeviceLifecycle),
    )
    await work.commit()
    return await device_out_of(session, device, state, now)

"""Console JSON API for devices."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from lunaris_protocol import DeviceStatus
from lunaris_server.api_errors import error_responses
from lunaris_server.deps import (
    AdminUser,
    CurrentUser,
    NowDep,
    RowId,
    SessionDep,
    StateDep,
    user_actor,
)
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices import reenrollments
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.devices.queries import DeviceQuery
from lunaris_server.devices.service import Liveness
from lunaris_server.pagination import PageDep, Paginated
from lunaris_server.realtime import outbox
from lunaris_server.state import AppState

router = APIRouter(prefix="/api/devices", tags=["devices"], responses=error_responses(401, 422))


class ScanErrorOut(BaseModel):
    code: str | None
    message: str
    at: datetime


class CloneSuspectedOut(BaseModel):
    """Heartbeats of this identity alternate between two hostnames or addresses: two PCs
    seem to share it (a disk image cloned after the agent enrolled)."""

    since: datetime
    evidence: str


class DeviceOut(BaseModel):
    id: str
    hostname: str
    os_version: str
    agent_version: str
    status: DeviceStatus
    last_seen_at: datetime
    updates_count: int
    enrolled_at: datetime
    last_scan_at: datetime | None
    scan_error: ScanErrorOut | None
    connected: bool
    """The agent's push socket is open (on any server process)."""
    clone_suspected: CloneSuspectedOut | None = None

    @classmethod
    def of(
        cls, device: Device, *, liveness: Liveness, now: datetime, connected: bool
    ) -> "DeviceOut":
        scan_error = None
        if device.scan_error_at is not None:
            scan_error = ScanErrorOut(
                code=device.scan_error_code,
                message=device.scan_error_message or "",
                at=device.scan_error_at,
            )
        return cls(
            id=device.id,
            hostname=device.hostname,
            os_version=device.os_version,
            agent_version=device.agent_version,
            status=liveness.status(device, now),
            last_seen_at=device.last_seen_at,
            updates_count=device.updates_count,
            enrolled_at=device.enrolled_at,
            last_scan_at=device.last_scan_at,
            scan_error=scan_error,
            connected=connected,
            clone_suspected=None
            if device.clone_suspected_at is None
            else CloneSuspectedOut(
                since=device.clone_suspected_at, evidence=device.clone_evidence or ""
            ),
        )


@router.get("")
async def list_devices(
    _user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=256, description="hostname or id contains")] = None,
    status: DeviceStatus | None = None,
    has_updates: bool | None = None,
    has_scan_error: bool | None = None,
    sort: Annotated[str, Query(max_length=32, description="field, '-field' descending")] = (
        "hostname"
    ),
) -> Paginated[DeviceOut]:
    sort_by, descending = DeviceQuery.parse_sort(sort)
    query = DeviceQuery(
        search=q,
        status=status,
        has_updates=has_updates,
        has_scan_error=has_scan_error,
        sort=sort_by,
        descending=descending,
        limit=page.limit,
        offset=page.offset,
    )
    rows, total = await device_queries.list_devices(
        session, query=query, liveness=state.liveness, now=now
    )
    return Paginated(
        items=[_out(d, state, now) for d in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/{device_id}/revoke", responses=error_responses(403, 404))
async def revoke_device(
    device_id: UUID,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    block: Annotated[bool, Query()] = False,
) -> DeviceOut:
    """Revokes the device's token. ``block=true``: no enrollment secret lets this device id
    enroll again (a stolen PC); revoking a revoked device with it blocks it afterwards."""
    device = await devices.revoke(
        session, device_id=str(device_id), now=now, actor=user_actor(request, admin), block=block
    )
    await state.commands.commit_revocation(session, device.id)
    return _out(device, state, now)


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
    await outbox.commit(session, state.realtime)
    return ReenrollmentOut.model_validate(decided, from_attributes=True)


@router.get("/{device_id}", responses=error_responses(404))
async def get_device(
    device_id: UUID, _user: CurrentUser, session: SessionDep, state: StateDep, now: NowDep
) -> DeviceOut:
    device = await devices.get_device(session, device_id=str(device_id))
    return _out(device, state, now)


def _out(device: Device, state: AppState, now: datetime) -> DeviceOut:
    connected = state.realtime.agents.location(device.id) is not None
    return DeviceOut.of(device, liveness=state.liveness, now=now, connected=connected)

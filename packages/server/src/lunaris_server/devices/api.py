"""Console JSON API for devices."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus
from lunaris_protocol.tags import MAX_TAG, Tag
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.core.ids import MAX_ROW_ID
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices import clones
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices import service as devices
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device
from lunaris_server.devices.queries import DeviceQuery
from lunaris_server.devices.tags import Tags, tags_of
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

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
    hostnames: list[str]
    """The hostnames it alternated between (one, for clones that kept one hostname): what
    ``POST /api/devices/{id}/split`` takes to name the other PC."""
    addresses: list[str]
    """The addresses it spoke from lately."""


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
    last_good_scan_at: datetime | None
    """Its last scan that worked; null: not scanned yet."""
    scan_error: ScanErrorOut | None
    connected: bool
    """The agent's push socket is open (on any server process)."""
    clone_suspected: CloneSuspectedOut | None = None
    split_pending: bool = False
    """An admin split this identity; the other PC takes its own at its next heartbeat."""
    tags: list[str] = []
    """Tags set by admins (``PUT /api/devices/{id}/tags``)."""
    agent_tags: list[str] = []
    """Tags the agent's config claims (any PC can claim any of these)."""
    capabilities: list[str] = []
    """What its agent said it understands (``exact_versions``: installs the version a
    command names; ``window_end``: starts no install after a policy window closed). Empty
    for agents built before capabilities: they install the newest version of a package."""
    time_zone: str | None = None
    """The PC's IANA time zone as its agent reports it; null from agents that do not."""
    booted_at: datetime | None = None
    """When the PC last started, as its agent reports it."""
    reboot_pending_since: datetime | None = None
    """An install asked for a restart then and the PC has not started since (Lunaris never
    restarts a PC itself)."""
    logged_on_user: str | None = None
    """Who is logged on at its console (``CONTOSO\\anna``); empty when nobody is, null from
    agents that do not say."""
    ip_addresses: list[str] | None = None
    """The PC's own addresses as its agent lists them (behind NAT, not where it speaks from)."""
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None

    @classmethod
    def of(
        cls, device: Device, *, liveness: Liveness, now: datetime, connected: bool, tags: Tags
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
            last_good_scan_at=device.last_good_scan_at,
            scan_error=scan_error,
            connected=connected,
            clone_suspected=None
            if device.clone_suspected_at is None
            else CloneSuspectedOut(
                since=device.clone_suspected_at,
                evidence=device.clone_evidence or "",
                hostnames=clones.seen_hostnames(device),
                addresses=clones.seen_addresses(device),
            ),
            split_pending=device.split_pending,
            tags=tags.admin,
            agent_tags=tags.agent,
            capabilities=device.capabilities,
            time_zone=device.time_zone,
            booted_at=device.booted_at,
            reboot_pending_since=device.reboot_pending_since,
            logged_on_user=device.logged_on_user,
            ip_addresses=None if device.ip_addresses is None else device.addresses,
            model=device.model,
            manufacturer=device.manufacturer,
            serial_number=device.serial_number,
        )


@router.get("", responses=error_responses(404))
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
    scanned: Annotated[
        bool | None, Query(description="a scan ever worked; false: not scanned yet")
    ] = None,
    group_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="only the group's devices")
    ] = None,
    tag: Annotated[Tag | None, Query(max_length=MAX_TAG, description="with this tag")] = None,
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
        scanned=scanned,
        group_id=group_id,
        tag=tag,
        sort=sort_by,
        descending=descending,
        limit=page.limit,
        offset=page.offset,
    )
    rows, total = await device_queries.list_devices(
        session, query=query, liveness=state.liveness, now=now
    )
    tags = await tags_of(session, (d.id for d in rows))
    return Paginated(
        items=[device_out(d, state, now, tags[d.id]) for d in rows],
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
    work: WorkDep,
    state: StateDep,
    now: NowDep,
    block: Annotated[bool, Query()] = False,
) -> DeviceOut:
    """Revokes the device's token. ``block=true``: no enrollment secret lets this device id
    enroll again (a stolen PC); revoking a revoked device with it blocks it afterwards."""
    device = await devices.revoke(
        session,
        device_id=str(device_id),
        now=now,
        actor=user_actor(request, admin),
        lifecycle=state.part(DeviceLifecycle),
        block=block,
    )
    await work.commit()
    return await device_out_of(session, device, state, now)


@router.get("/{device_id}", responses=error_responses(404))
async def get_device(
    device_id: UUID, _user: CurrentUser, session: SessionDep, state: StateDep, now: NowDep
) -> DeviceOut:
    device = await devices.get_device(session, device_id=str(device_id))
    return await device_out_of(session, device, state, now)


def device_out(device: Device, state: AppState, now: datetime, tags: Tags) -> DeviceOut:
    connected = state.realtime.agents.location(device.id) is not None
    return DeviceOut.of(device, liveness=state.liveness, now=now, connected=connected, tags=tags)


async def device_out_of(
    session: AsyncSession, device: Device, state: AppState, now: datetime
) -> DeviceOut:
    """One device's answer, its tags read for it."""
    tags = await tags_of(session, [device.id])
    return device_out(device, state, now, tags[device.id])

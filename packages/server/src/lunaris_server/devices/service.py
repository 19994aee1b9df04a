"""Devices: registration, heartbeats, token checks, and the console's queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus, HeartbeatRequest, RegisterRequest
from lunaris_server.audit import service as audit
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices.cache import DeviceCache, KnownDevice
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.models import Device
from lunaris_server.enrollment import service as enrollment
from lunaris_server.errors import NotAuthenticated, NotFound
from lunaris_server.realtime import events
from lunaris_server.realtime.outbox import announce
from lunaris_server.security import TokenKind, new_token, token_hash


@dataclass(frozen=True, slots=True)
class Liveness:
    """Online means seen within the heartbeat window (interval x allowed misses)."""

    offline_after: timedelta

    def cutoff(self, now: datetime) -> datetime:
        return now - self.offline_after

    def status(self, device: Device, now: datetime) -> DeviceStatus:
        if device.last_seen_at > self.cutoff(now):
            return DeviceStatus.ONLINE
        return DeviceStatus.OFFLINE


@dataclass(frozen=True, slots=True)
class Registration:
    device: Device
    device_token: str
    """Shown once to the agent, stored hashed."""
    created: bool


async def register(
    session: AsyncSession, *, request: RegisterRequest, now: datetime, ip: str | None
) -> Registration:
    """Enrolls a device, or re-enrolls it: a new token replaces (and invalidates) the old one."""
    secret_id = await enrollment.consume_secret(
        session, plaintext=request.enrollment_secret, now=now
    )
    device_token = new_token(TokenKind.DEVICE)
    device_id = str(request.device_id)
    device = await session.get(Device, device_id, with_for_update=True)
    created = device is None
    if device is None:
        device = Device(
            id=device_id,
            enrolled_at=now,
            updates_count=0,
        )
        session.add(device)
    device.hostname = request.hostname
    device.os_version = request.os_version
    device.agent_version = request.agent_version
    device.token_hash = token_hash(device_token)
    device.enrollment_secret_id = secret_id
    device.revoked_at = None
    mark_seen(device, now=now)
    await session.flush()
    announce(session, events.device_status(device))
    await audit.record(
        session,
        actor=audit.Actor(f"device:{device_id}", ip),
        action="device.register" if created else "device.reregister",
        target=f"device:{device_id}",
        details={"hostname": request.hostname, "enrollment_secret_id": secret_id},
        now=now,
    )
    return Registration(device=device, device_token=device_token, created=created)


async def authenticate(session: AsyncSession, *, device_token: str, lock: bool = True) -> Device:
    """The device a token speaks for; a token never speaks for any other.

    With ``lock`` the row is locked for the request (PostgreSQL), so one device's heartbeats,
    reports and the offline sweeper never interleave their read-then-write of its status.
    """
    query = select(Device).where(Device.token_hash == token_hash(device_token))
    device = await session.scalar(query.with_for_update() if lock else query)
    if device is None or device.revoked_at is not None:
        raise NotAuthenticated("unknown or revoked device token")
    return device


async def heartbeat(
    session: AsyncSession,
    *,
    device_token: str,
    request: HeartbeatRequest,
    now: datetime,
    last_seen: LastSeenWriter,
    cache: DeviceCache,
) -> list[str]:
    """Marks the device seen and applies what it says changed; returns the changed fields.

    Most heartbeats change nothing but the time: those are answered from ``cache`` (or one
    unlocked read) and only hand the time to ``last_seen``, which writes many devices' times
    in one statement a second. A heartbeat that brings news (changed fields, or a device
    announced offline coming back) locks the row, writes it, and is announced at once.
    """
    hashed = token_hash(device_token)
    known = cache.get(hashed)
    if known is None:
        read_at = cache.now()
        device = await authenticate(session, device_token=device_token, lock=False)
        known = cache.remember(hashed, device, read_at=read_at)
    if known.announced_status == DeviceStatus.ONLINE and not _changed_fields(known, request):
        last_seen.record(known.device_id, now)
        return []
    device = await authenticate(session, device_token=device_token, lock=True)
    changed = _changed_fields(device, request)
    for field in changed:
        setattr(device, field, getattr(request, field))
    came_online = mark_seen(device, now=now)
    await session.flush()
    if changed or came_online:
        announce(session, events.device_status(device))
    return changed


def _changed_fields(device: Device | KnownDevice, request: HeartbeatRequest) -> list[str]:
    return [
        field
        for field in ("hostname", "os_version", "agent_version")
        if (value := getattr(request, field)) is not None and value != getattr(device, field)
    ]


def mark_seen(device: Device, *, now: datetime) -> bool:
    """Records that the device spoke; True when it was announced offline until now."""
    came_online = device.announced_status != DeviceStatus.ONLINE
    device.last_seen_at = now
    device.announced_status = DeviceStatus.ONLINE.value
    return came_online


async def mark_offline(session: AsyncSession, *, liveness: Liveness, now: datetime) -> list[Device]:
    """Flips devices that missed their heartbeat window to offline and announces each.

    One conditional UPDATE: of several server processes sweeping at once, exactly one
    flips (and so announces) each device.
    """
    gone_quiet = await session.scalars(
        update(Device)
        .where(
            Device.announced_status == DeviceStatus.ONLINE.value,
            Device.last_seen_at <= liveness.cutoff(now),
            Device.revoked_at.is_(None),
        )
        .values(announced_status=DeviceStatus.OFFLINE.value)
        .returning(Device)
        .execution_options(synchronize_session=False)
    )
    devices = list(gone_quiet)
    for device in devices:
        announce(session, events.device_status(device))
    return devices


class DeviceSort(StrEnum):
    HOSTNAME = "hostname"
    LAST_SEEN = "last_seen_at"
    STATUS = "status"
    UPDATES = "updates_count"
    ENROLLED = "enrolled_at"
    OS_VERSION = "os_version"
    AGENT_VERSION = "agent_version"


_SORT_COLUMNS: dict[DeviceSort, Any] = {
    DeviceSort.HOSTNAME: func.lower(Device.hostname),
    # Online devices are exactly the recently seen ones, so status sorts by last seen.
    DeviceSort.LAST_SEEN: Device.last_seen_at,
    DeviceSort.STATUS: Device.last_seen_at,
    DeviceSort.UPDATES: Device.updates_count,
    DeviceSort.ENROLLED: Device.enrolled_at,
    DeviceSort.OS_VERSION: Device.os_version,
    DeviceSort.AGENT_VERSION: Device.agent_version,
}


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    search: str | None = None
    status: DeviceStatus | None = None
    has_updates: bool | None = None
    has_scan_error: bool | None = None
    sort: DeviceSort = DeviceSort.HOSTNAME
    descending: bool = False
    limit: int = 50
    offset: int = 0

    @staticmethod
    def parse_sort(sort: str) -> tuple[DeviceSort, bool]:
        return parse_sort(sort, DeviceSort, what="devices")


async def list_devices(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime
) -> tuple[list[Device], int]:
    statement = select(Device).where(Device.revoked_at.is_(None))
    if query.search:
        pattern = contains_pattern(query.search)
        statement = statement.where(
            or_(
                func.lower(Device.hostname).like(pattern, escape="\\"),
                Device.id.like(pattern, escape="\\"),
            )
        )
    if query.status is DeviceStatus.ONLINE:
        statement = statement.where(Device.last_seen_at > liveness.cutoff(now))
    elif query.status is DeviceStatus.OFFLINE:
        statement = statement.where(Device.last_seen_at <= liveness.cutoff(now))
    if query.has_updates is not None:
        statement = statement.where(
            Device.updates_count > 0 if query.has_updates else Device.updates_count == 0
        )
    if query.has_scan_error is not None:
        statement = statement.where(
            Device.scan_error_at.is_not(None)
            if query.has_scan_error
            else Device.scan_error_at.is_(None)
        )
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    column = _SORT_COLUMNS[query.sort]
    order = column.desc() if query.descending else column.asc()
    # The id breaks ties, so pages never overlap or skip rows.
    statement = statement.order_by(order, Device.id).limit(query.limit).offset(query.offset)
    return list(await session.scalars(statement)), total or 0


async def get_device(session: AsyncSession, *, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        raise NotFound(f"no device with id {device_id}")
    return device

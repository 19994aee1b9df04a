"""Devices: heartbeats, token checks, revocation, and the console's queries (registration
is in registration.py)."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus, HeartbeatRequest, NewIdentity
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import NotAuthenticated, NotFound
from lunaris_server.core.liveness import Liveness
from lunaris_server.core.security import token_hash
from lunaris_server.devices import clones, events, reenrollments, splits
from lunaris_server.devices.cache import DeviceCache, KnownDevice
from lunaris_server.devices.facts import note_restart, reboot_news, said_facts
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device, capability_text
from lunaris_server.realtime import outbox
from lunaris_server.realtime.outbox import announce


async def revoke(
    session: AsyncSession,
    *,
    device_id: str,
    now: datetime,
    actor: audit.Actor,
    lifecycle: DeviceLifecycle,
    block: bool = False,
) -> Device:
    """Refuses the device's token from now on and takes the device off the console; with
    ``block``, no enrollment secret lets it enroll again (a stolen PC).

    Its waiting updates leave the fleet counts in the same transaction (the counts cover
    listed devices only), its open commands are closed (its agent can no longer fetch or
    report them), and the announcement evicts it from every process's heartbeat cache.
    Revoking a revoked device changes nothing; enrolling it again undoes it.
    """
    # FOR NO KEY UPDATE (PostgreSQL): rows that refer to the device may still be inserted
    # meanwhile. A progress step holds its command's row and then writes history about the
    # device; with FOR UPDATE it would wait for this revoke, which waits for that command.
    device = await session.get(Device, device_id, with_for_update={"key_share": True})
    if device is None:
        raise NotFound(f"no device with id {device_id}")
    if device.revoked_at is not None:
        if block and not device.reenrollment_blocked:
            device.reenrollment_blocked = True
            await _audit_revoke(session, device, actor=actor, block=True, now=now)
        return device
    device.revoked_at = now
    device.reenrollment_blocked = block
    await reenrollments.close_open(session, device_id=device.id)
    await session.flush()
    await lifecycle.revoked(session, device_id=device.id, now=now)
    announce(session, events.device_status(device))
    revoked_id = device.id

    async def close_sockets(process: outbox.Process) -> None:
        # Its token no longer works: its push socket closes on every process.
        await process.realtime.agents.disconnect([revoked_id], reason="device revoked")

    outbox.after_commit(session, close_sockets)
    await _audit_revoke(session, device, actor=actor, block=block, now=now)
    return device


async def _audit_revoke(
    session: AsyncSession, device: Device, *, actor: audit.Actor, block: bool, now: datetime
) -> None:
    await audit.record(
        session,
        actor=actor,
        action="device.revoke",
        target=f"device:{device.id}",
        details={"hostname": device.hostname, "reenrollment": "blocked" if block else "allowed"},
        now=now,
    )


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


def note_token_used(device: Device, *, now: datetime) -> None:
    """Records the token's first use: from then on, replacing it needs proof."""
    if device.token_used_at is None:
        device.token_used_at = now


async def heartbeat(
    session: AsyncSession,
    *,
    device_token: str,
    request: HeartbeatRequest,
    now: datetime,
    last_seen: LastSeenWriter,
    cache: DeviceCache,
    ip: str | None = None,
) -> NewIdentity | None:
    """Marks the device seen and applies what it says changed; for the PC an admin split off
    a cloned identity, only makes it a device of its own and returns that identity.

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
    if _is_plain(known, request, ip):
        last_seen.record(known.device_id, now)
        return None
    read_at = cache.now()
    device = await authenticate(session, device_token=device_token, lock=True)
    if device.split_pending:
        identity = await splits.hand_over(session, device, request, ip=ip, now=now)
        if identity is not None:
            return identity  # the other PC of a split clone: nothing recorded here
    changed = _changed_fields(device, request)
    newly_pending = reboot_news(request, pending=device.reboot_pending_since is not None)
    # A new address is announced like a change: no process may answer from an entry that
    # still holds the old one, or clones alternating between processes would go unseen.
    moved, cloned = clones.note_address(device, ip, now=now)
    if "hostname" in changed and request.hostname is not None:
        cloned = clones.note_hostname(device, request.hostname, now=now) or cloned
    for field, value in changed.items():
        setattr(device, field, value)
    note_restart(device, windows_pending=request.reboot_pending, now=now)
    came_online = mark_seen(device, now=now)
    note_token_used(device, now=now)
    await session.flush()
    if changed or newly_pending or came_online or moved or cloned:
        announce(session, events.device_status(device))  # evicts it everywhere
    else:
        # What made it news here (its token's first use) is now known: plain from the next
        # heartbeat on. Every process comes this way once.
        cache.remember(hashed, device, read_at=read_at)
    return None


def plain_heartbeat(
    *,
    device_token: str,
    request: HeartbeatRequest,
    now: datetime,
    last_seen: LastSeenWriter,
    cache: DeviceCache,
    ip: str | None = None,
) -> str | None:
    """The common heartbeat, without a database session: a cached device, online, with
    nothing new, from where it last spoke. Records the time and returns the device id; None
    when :func:`heartbeat` must handle it."""
    known = cache.get(token_hash(device_token))
    if known is None or not _is_plain(known, request, ip):
        return None
    last_seen.record(known.device_id, now)
    return known.device_id


def _is_plain(known: KnownDevice, request: HeartbeatRequest, ip: str | None) -> bool:
    return (
        known.announced_status == DeviceStatus.ONLINE
        and known.token_used
        and not known.split_pending
        and not clones.is_news(known.last_ip, ip)
        and not _changed_fields(known, request)
        and not reboot_news(request, pending=known.reboot_pending)
    )


def _changed_fields(
    device: Device | KnownDevice, request: HeartbeatRequest
) -> dict[str, str | datetime]:
    """The device's fields the heartbeat changes, with their new values (a field it leaves
    out, null, stays as it is)."""
    capabilities = request.capabilities
    said: dict[str, str | datetime | None] = {
        "hostname": request.hostname,
        "os_version": request.os_version,
        "agent_version": request.agent_version,
        "agent_capabilities": None if capabilities is None else capability_text(capabilities),
        "time_zone": request.time_zone,
        "booted_at": request.booted_at,
        **said_facts(request),
    }
    return {
        field: value
        for field, value in said.items()
        if value is not None and value != getattr(device, field)
    }


async def note_reboot_required(session: AsyncSession, *, device_id: str, now: datetime) -> None:
    """An install on the device asked for a restart: it is "reboot pending" until it next
    starts (consoles are told). Lunaris never restarts a PC itself."""
    device = await session.get(Device, device_id)
    if device is not None and device.reboot_pending_since is None:
        device.reboot_pending_since = now
        announce(session, events.device_status(device))


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


async def get_device(session: AsyncSession, *, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        raise NotFound(f"no device with id {device_id}")
    return device

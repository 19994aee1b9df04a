"""Devices: heartbeats, token checks, revocation, and the console's queries (registration
is in registration.py)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus, HeartbeatRequest
from lunaris_server.audit import service as audit
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices import clones, reenrollments
from lunaris_server.devices.cache import DeviceCache, KnownDevice
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.models import Device
from lunaris_server.errors import InvalidInput, NotAuthenticated, NotFound
from lunaris_server.realtime import events
from lunaris_server.realtime.outbox import announce
from lunaris_server.security import token_hash
from lunaris_server.updates import fleet_counts


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


async def revoke(
    session: AsyncSession,
    *,
    device_id: str,
    now: datetime,
    actor: audit.Actor,
    block: bool = False,
) -> Device:
    """Refuses the device's token from now on and takes the device off the console; with
    ``block``, no enrollment secret lets it enroll again (a stolen PC).

    Its waiting updates leave the fleet counts in the same transaction (the counts cover
    listed devices only), its open commands are closed (its agent can no longer fetch or
    report them), and the announcement evicts it from every process's heartbeat cache.
    Revoking a revoked device changes nothing; enrolling it again undoes it.
    """
    # Here, not at the top: the commands service depends on this module.
    from lunaris_server.commands import service as commands

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
    await fleet_counts.device_rows_counted(session, device_id=device.id, counted=False)
    device.revoked_at = now
    device.reenrollment_blocked = block
    await reenrollments.close_open(session, device_id=device.id)
    await session.flush()
    await commands.close_for_revoked(session, now=now, device_id=device.id)
    announce(session, events.device_status(device))
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
    if _is_plain(known, request, ip):
        last_seen.record(known.device_id, now)
        return []
    read_at = cache.now()
    device = await authenticate(session, device_token=device_token, lock=True)
    changed = _changed_fields(device, request)
    # A new address is announced like a change: no process may answer from an entry that
    # still holds the old one, or clones alternating between processes would go unseen.
    moved, cloned = clones.note_address(device, ip, now=now)
    if "hostname" in changed and request.hostname is not None:
        cloned = clones.note_hostname(device, request.hostname, now=now) or cloned
    for field in changed:
        setattr(device, field, getattr(request, field))
    came_online = mark_seen(device, now=now)
    note_token_used(device, now=now)
    await session.flush()
    if changed or came_online or moved or cloned:
        announce(session, events.device_status(device))  # evicts it everywhere
    else:
        # What made it news here (its token's first use) is now known: plain from the next
        # heartbeat on. Every process comes this way once.
        cache.remember(hashed, device, read_at=read_at)
    return changed


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
        and not clones.is_news(known.last_ip, ip)
        and not _changed_fields(known, request)
    )


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


_SORT_COLUMNS: dict[DeviceSort, tuple[Any, type]] = {
    # What each sort orders by, and the Python type of its values (a place in the list).
    DeviceSort.HOSTNAME: (func.lower(Device.hostname), str),
    # Online devices are exactly the recently seen ones, so status sorts by last seen.
    DeviceSort.LAST_SEEN: (Device.last_seen_at, datetime),
    DeviceSort.STATUS: (Device.last_seen_at, datetime),
    DeviceSort.UPDATES: (Device.updates_count, int),
    DeviceSort.ENROLLED: (Device.enrolled_at, datetime),
    DeviceSort.OS_VERSION: (Device.os_version, str),
    DeviceSort.AGENT_VERSION: (Device.agent_version, str),
}


Cursor = tuple[Any, str]
"""A row's place in a sorted list: its sort value (as the database compares it) and its id."""


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
    after: Cursor | None = None
    """The rows after this place, instead of skipping ``offset`` rows."""
    before: Cursor | None = None
    """The rows just before this place, instead of skipping ``offset`` rows."""

    @staticmethod
    def parse_sort(sort: str) -> tuple[DeviceSort, bool]:
        return parse_sort(sort, DeviceSort, what="devices")


@dataclass(frozen=True, slots=True)
class DevicePage:
    devices: list[Device]
    total: int
    """All the devices the query matches, on every page."""
    first: Cursor | None
    """The place of the first device shown (``before`` it is the page before)."""
    last: Cursor | None
    """The place of the last device shown (``after`` it is the page after)."""


_ID_CHARACTERS = frozenset("0123456789abcdef-")


def _could_be_in_an_id(search: str) -> bool:
    """Device ids are canonical UUIDs (registration parses them): a search with any other
    character can only match hostnames, and leaving the id out lets the hostname's trigram
    index answer it alone."""
    return set(search.strip().lower()) <= _ID_CHARACTERS


async def list_devices(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime
) -> tuple[list[Device], int]:
    page = await device_page(session, query=query, liveness=liveness, now=now)
    return page.devices, page.total


async def device_page(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime
) -> DevicePage:
    """One page of the list, by offset or next to a known place.

    An offset costs a visit to every skipped entry. Only the places (sort value, id) are
    skipped, so on PostgreSQL the hostname order's covering index skips them by an
    index-only scan; but heartbeats rewrite device rows all the time, and each table page
    rewritten since the last vacuum is visited too. So "next" and "previous" start from the
    edge of the page shown instead: one index seek, however deep the page.
    """
    statement = select(Device).where(Device.revoked_at.is_(None))
    if query.search:
        pattern = contains_pattern(query.search)
        matches = [func.lower(Device.hostname).like(pattern, escape="\\")]
        if _could_be_in_an_id(query.search):
            matches.append(Device.id.like(pattern, escape="\\"))
        statement = statement.where(or_(*matches))
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

    sort_key, value_type = _SORT_COLUMNS[query.sort]
    # The page's places first (sort value and id), then its rows by id: the skipped and
    # sought entries are read from the index alone where it covers them, and only the page's
    # rows are read whole.
    places = statement.with_only_columns(Device.id, sort_key.label("sort_value"))
    # "Before" a place reads backwards from it, then turns the rows around.
    backwards = query.before is not None
    descending = query.descending != backwards
    edge_of = query.after if query.after is not None else query.before
    if edge_of is not None:
        value, device_id = edge_of
        if not isinstance(value, value_type):
            raise InvalidInput("this place in the list does not fit its order")
        at = literal(value, sort_key.type)
        # (key, id) beyond (value, id), spelled so that both databases seek the index on
        # the key (SQLite does not for a row-value comparison on an expression).
        if descending:
            beyond = and_(sort_key <= at, or_(sort_key < at, Device.id < device_id))
        else:
            beyond = and_(sort_key >= at, or_(sort_key > at, Device.id > device_id))
        places = places.where(beyond)
    else:
        places = places.offset(query.offset)
    # The id breaks ties, so pages never overlap or skip rows. It runs the same way as the
    # sort column, so one index (column, id) read forwards or backwards serves the order.
    places = places.order_by(*(c.desc() if descending else c.asc() for c in (sort_key, Device.id)))
    page = places.limit(query.limit).subquery("page")
    ordered = (page.c.sort_value, page.c.id)
    rows = list(
        await session.execute(
            select(Device, page.c.sort_value)
            .join(page, Device.id == page.c.id)
            .order_by(*(c.desc() if descending else c.asc() for c in ordered))
        )
    )
    if backwards:
        rows.reverse()
    return DevicePage(
        devices=[device for device, _key in rows],
        total=total or 0,
        first=(rows[0][1], rows[0][0].id) if rows else None,
        last=(rows[-1][1], rows[-1][0].id) if rows else None,
    )


async def recently_seen(session: AsyncSession, *, limit: int) -> list[Device]:
    statement = (
        select(Device)
        .where(Device.revoked_at.is_(None))
        .order_by(Device.last_seen_at.desc(), Device.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(statement))


async def get_device(session: AsyncSession, *, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        raise NotFound(f"no device with id {device_id}")
    return device

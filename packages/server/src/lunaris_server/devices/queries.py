"""The console's device lists: filters, sorts, and pages by offset or next to a known place."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus
from lunaris_server.core.errors import InvalidInput
from lunaris_server.core.liveness import Liveness
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices.models import Device


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

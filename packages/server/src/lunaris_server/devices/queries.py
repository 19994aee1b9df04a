"""The console's device lists: filters, sorts, and pages by offset or next to a known place."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import DeviceStatus
from lunaris_protocol.tags import Tag
from lunaris_server.core.errors import InvalidInput, NotFound
from lunaris_server.core.ids import RowNumber
from lunaris_server.core.liveness import Liveness
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup, DeviceTag


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
    """Updates waiting (true), or a scan that worked and found none (false)."""
    has_scan_error: bool | None = None
    """The last scan failed (true), or worked (false)."""
    scanned: bool | None = None
    """A scan ever worked (true), or none did yet: "not scanned yet" (false)."""
    group_id: int | None = None
    """Only the devices in this group."""
    tag: str | None = None
    """Only the devices with this tag (of either kind)."""
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


async def matching(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime
) -> Select[Any]:
    """The enrolled devices the query's filters match (in no order)."""
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
    # A device not scanned yet is neither up to date nor scanned well.
    scanned = Device.last_good_scan_at.is_not(None)
    if query.has_updates is not None:
        statement = statement.where(
            Device.updates_count > 0
            if query.has_updates
            else and_(Device.updates_count == 0, scanned)
        )
    if query.has_scan_error is not None:
        statement = statement.where(
            Device.scan_error_at.is_not(None)
            if query.has_scan_error
            else and_(Device.scan_error_at.is_(None), scanned)
        )
    if query.scanned is not None:
        statement = statement.where(scanned if query.scanned else ~scanned)
    if query.group_id is not None:
        group = await session.get(DeviceGroup, query.group_id)
        if group is None:
            raise NotFound(f"no group with id {query.group_id}")
        statement = statement.where(member_condition(group))
    if query.tag is not None:
        statement = statement.where(
            Device.id.in_(select(DeviceTag.device_id).where(DeviceTag.tag == query.tag))
        )
    return statement


async def matching_ids(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime, limit: int
) -> list[str]:
    """The ids of the devices the query matches (a bulk action's "all matching"); more than
    ``limit`` is refused."""
    statement = await matching(session, query=query, liveness=liveness, now=now)
    ids = list(
        await session.scalars(
            statement.with_only_columns(Device.id).order_by(Device.id).limit(limit + 1)
        )
    )
    if len(ids) > limit:
        raise InvalidInput(f"the selection holds more than {limit} devices; narrow it down")
    return ids


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
    statement = await matching(session, query=query, liveness=liveness, now=now)
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


MAX_SELECTION = 100_000
"""Devices one bulk action may name (the largest fleet "all matching" selects)."""


class DeviceFilter(BaseModel):
    """The device list's filters, as a bulk action's "all matching" names them."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, Field(max_length=256)] | None = None
    status: DeviceStatus | None = None
    has_updates: bool | None = None
    has_scan_error: bool | None = None
    scanned: bool | None = None
    group_id: RowNumber | None = None
    tag: Tag | None = None

    def query(self) -> DeviceQuery:
        return DeviceQuery(
            search=(self.q or "").strip() or None,
            status=self.status,
            has_updates=self.has_updates,
            has_scan_error=self.has_scan_error,
            scanned=self.scanned,
            group_id=self.group_id,
            tag=self.tag,
        )


class DeviceSelection(BaseModel):
    """The devices a bulk action is for: some picked by id, or all that match the filters."""

    model_config = ConfigDict(extra="forbid")

    device_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_SELECTION)] | None = None
    matching: DeviceFilter | None = None
    """Every enrolled device the filters match ({} for the whole fleet)."""

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.device_ids is None) == (self.matching is None):
            raise ValueError("give either device_ids or matching")
        return self

    def described(self) -> dict[str, object]:
        """How the devices were chosen, for the audit log."""
        if self.matching is not None:
            return {"matching": self.matching.model_dump(mode="json", exclude_none=True)}
        assert self.device_ids is not None
        return {"device_ids": len(self.device_ids)}


async def selected_ids(
    session: AsyncSession, *, selection: DeviceSelection, liveness: Liveness, now: datetime
) -> list[str]:
    """The enrolled devices selected; a picked id that is unknown or revoked is refused."""
    if selection.matching is not None:
        return await matching_ids(
            session,
            query=selection.matching.query(),
            liveness=liveness,
            now=now,
            limit=MAX_SELECTION,
        )
    assert selection.device_ids is not None
    wanted = sorted({str(device_id) for device_id in selection.device_ids})
    found: set[str] = set()
    for start in range(0, len(wanted), 1_000):
        found.update(
            await session.scalars(
                select(Device.id).where(
                    Device.id.in_(wanted[start : start + 1_000]), Device.revoked_at.is_(None)
                )
            )
        )
    missing = [device_id for device_id in wanted if device_id not in found]
    if missing:
        raise InvalidInput(
            f"{len(missing)} of the devices are not enrolled: " + ", ".join(missing[:5]),
            details={"not_enrolled": missing[:100]},
        )
    return wanted

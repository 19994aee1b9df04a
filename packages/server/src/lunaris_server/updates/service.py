"""Update reports: diff a device's full winget list against what is stored, and the
fleet-wide queries over the result."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import UpdateItem, UpdateReport
from lunaris_server.db.queries import contains_pattern, parse_sort
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.realtime import events as realtime_events
from lunaris_server.realtime.outbox import announce
from lunaris_server.updates import fleet_counts
from lunaris_server.updates.models import DeviceUpdate, FleetPackage, FleetVariant, UpdateEvent
from lunaris_server.updates.versions import newest, version_key


class EventKind(StrEnum):
    DETECTED = "detected"
    VERSION_CHANGED = "version_changed"
    RESOLVED = "resolved"
    INSTALL_STARTED = "install_started"
    INSTALL_SUCCEEDED = "install_succeeded"
    INSTALL_FAILED = "install_failed"


RowKey = tuple[str, str | None, str]
"""(package_identifier, source, installed_version): one stored row per key."""


@dataclass(slots=True)
class ReportOutcome:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    scan_failed: bool = False

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(slots=True)
class _Incoming:
    item: UpdateItem
    instances: int = 1


def _key(package_identifier: str, source: str | None, installed_version: str) -> RowKey:
    return (package_identifier, source, installed_version)


def _collapse(items: list[UpdateItem]) -> dict[RowKey, _Incoming]:
    """Exact duplicates (same key) become one row with an instance count; first one wins."""
    rows: dict[RowKey, _Incoming] = {}
    for item in items:
        key = _key(item.package_identifier, item.source, item.installed_version)
        if key in rows:
            rows[key].instances += 1
        else:
            rows[key] = _Incoming(item)
    return rows


def _differs(row: DeviceUpdate, incoming: _Incoming) -> bool:
    item = incoming.item
    return (
        row.available_version != item.available_version
        or row.name != item.name
        or row.explicit_targeting != item.explicit_targeting
        or row.truncated != item.truncated
        or row.instances != incoming.instances
    )


def _assign(row: DeviceUpdate, incoming: _Incoming) -> None:
    item = incoming.item
    row.installed_version = item.installed_version
    row.available_version = item.available_version
    row.name = item.name
    row.explicit_targeting = item.explicit_targeting
    row.truncated = item.truncated
    row.instances = incoming.instances


async def apply_report(
    session: AsyncSession, *, device: Device, report: UpdateReport, now: datetime
) -> ReportOutcome:
    """Brings the stored rows in line with the report, recording one event per change.

    Must run in the request's transaction after the device row was written (which locks it
    on PostgreSQL), so two reports from one device never interleave. An identical report
    writes nothing here.
    """
    if devices.mark_seen(device, now=now):
        announce(session, realtime_events.device_status(device))
    device.last_scan_at = now
    if report.scan_error is not None:
        # A failed scan says nothing about what is installed: keep the last good list.
        device.scan_error_code = report.scan_error.code
        device.scan_error_message = report.scan_error.message
        device.scan_error_at = now
        await session.flush()
        return ReportOutcome(scan_failed=True, unchanged=device.updates_count)
    device.scan_error_code = device.scan_error_message = device.scan_error_at = None

    stored = {
        _key(row.package_identifier, row.source, row.installed_version): row
        for row in await session.scalars(
            select(DeviceUpdate).where(DeviceUpdate.device_id == device.id)
        )
    }
    counted_before = [fleet_counts.variant_of(row) for row in stored.values()]
    incoming = _collapse(report.updates)
    outcome = ReportOutcome()
    events: list[UpdateEvent] = []
    waiting: list[DeviceUpdate] = []  # the device's rows after this report

    def event(kind: EventKind, row: DeviceUpdate, details: dict[str, Any] | None = None) -> None:
        events.append(
            UpdateEvent(
                device_id=device.id,
                package_identifier=row.package_identifier,
                source=row.source,
                kind=kind.value,
                from_version=row.installed_version,
                to_version=row.available_version,
                details=details,
                at=now,
            )
        )

    for key in stored.keys() & incoming.keys():
        row, new = stored.pop(key), incoming.pop(key)
        waiting.append(row)
        if not _differs(row, new):
            outcome.unchanged += 1
            continue
        previous = row.available_version
        _assign(row, new)
        outcome.changed.append(row.package_identifier)
        if previous != row.available_version:
            event(EventKind.VERSION_CHANGED, row, {"previous_available_version": previous})

    # What is left unmatched on both sides for one package is the same update whose installed
    # version moved (a partial upgrade): a change, not a resolution plus a new detection.
    leftovers: dict[tuple[str, str | None], list[DeviceUpdate]] = defaultdict(list)
    for row in sorted(stored.values(), key=lambda r: version_key(r.installed_version)):
        leftovers[(row.package_identifier, row.source)].append(row)
    for key, new in sorted(incoming.items(), key=lambda kv: version_key(kv[0][2])):
        candidates = leftovers.get((key[0], key[1]))
        if candidates:
            row = candidates.pop(0)
            del stored[_key(row.package_identifier, row.source, row.installed_version)]
            details = {
                "previous_installed_version": row.installed_version,
                "previous_available_version": row.available_version,
            }
            _assign(row, new)
            waiting.append(row)
            outcome.changed.append(row.package_identifier)
            event(EventKind.VERSION_CHANGED, row, details)
            continue
        row = DeviceUpdate(
            device_id=device.id,
            package_identifier=new.item.package_identifier,
            source=new.item.source,
            first_seen_at=now,
        )
        _assign(row, new)
        session.add(row)
        waiting.append(row)
        outcome.added.append(row.package_identifier)
        event(EventKind.DETECTED, row)

    for row in stored.values():
        outcome.removed.append(row.package_identifier)
        event(EventKind.RESOLVED, row)
    if stored:
        await session.execute(
            delete(DeviceUpdate).where(DeviceUpdate.id.in_([row.id for row in stored.values()]))
        )

    session.add_all(events)
    device.updates_count = len(waiting)
    await session.flush()
    if outcome.has_changes:
        # Last, so the shared counter rows stay locked only until the commit that follows.
        await fleet_counts.count_change(
            session,
            before=counted_before,
            after=[fleet_counts.variant_of(row) for row in waiting],
        )
        await fleet_counts.record_activity(
            session,
            device_id=device.id,
            at=now,
            detected=len(outcome.added),
            resolved=len(outcome.removed),
        )
        announce(
            session,
            realtime_events.device_updates_changed(
                device, added=outcome.added, changed=outcome.changed, removed=outcome.removed
            ),
        )
    return outcome


async def device_updates(session: AsyncSession, *, device_id: str) -> list[DeviceUpdate]:
    rows = await session.scalars(
        select(DeviceUpdate)
        .where(DeviceUpdate.device_id == device_id)
        .order_by(func.lower(DeviceUpdate.name), DeviceUpdate.package_identifier, DeviceUpdate.id)
    )
    return list(rows)


async def device_events(
    session: AsyncSession, *, device_id: str, limit: int, offset: int
) -> tuple[list[UpdateEvent], int]:
    query = select(UpdateEvent).where(UpdateEvent.device_id == device_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(UpdateEvent.at.desc(), UpdateEvent.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


class FleetSort(StrEnum):
    DEVICES = "devices"
    PACKAGE = "package_identifier"
    NAME = "name"


@dataclass(frozen=True, slots=True)
class FleetUpdate:
    """One package waiting somewhere in the fleet."""

    package_identifier: str
    source: str | None
    name: str
    devices: int
    installed_versions: list[str]
    available_version: str | None
    explicit_targeting: bool
    truncated: bool


@dataclass(frozen=True, slots=True)
class FleetQuery:
    search: str | None = None
    source: str | None = None
    sort: FleetSort = FleetSort.DEVICES
    descending: bool = True
    limit: int = 50
    offset: int = 0

    @staticmethod
    def parse_sort(sort: str) -> tuple[FleetSort, bool]:
        return parse_sort(sort, FleetSort, what="updates")


MAX_INSTALLED_VERSIONS_SHOWN = 20


async def fleet_updates(
    session: AsyncSession, *, query: FleetQuery
) -> tuple[list[FleetUpdate], int]:
    """Pages through the fleet counters (``fleet_counts``), then reads the variants of the
    page's packages for their versions, name and flags.

    A search picks packages whose id or any waiting row's name contains it; a package's
    count is always every device waiting for it. "Newest available" needs version
    ordering, which SQL's string max gets wrong (9 > 10), so it is computed in Python.
    """
    package = FleetPackage
    statement = select(package.package_identifier, package.source, package.devices)
    of_this_package = (
        FleetVariant.package_identifier == package.package_identifier,
        FleetVariant.source == package.source,
    )
    if query.search:
        pattern = contains_pattern(query.search)
        statement = statement.where(
            or_(
                func.lower(package.package_identifier).like(pattern, escape="\\"),
                select(FleetVariant.key)
                .where(*of_this_package, func.lower(FleetVariant.name).like(pattern, escape="\\"))
                .exists(),
            )
        )
    if query.source is not None:
        statement = statement.where(package.source == fleet_counts.source_key(query.source))
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    sort_column = {
        FleetSort.DEVICES: package.devices,
        FleetSort.PACKAGE: func.lower(package.package_identifier),
        FleetSort.NAME: func.lower(
            select(func.max(FleetVariant.name)).where(*of_this_package).scalar_subquery()
        ),
    }[query.sort]
    page = (
        await session.execute(
            statement.order_by(
                sort_column.desc() if query.descending else sort_column.asc(),
                package.package_identifier,
                package.source,
            )
            .limit(query.limit)
            .offset(query.offset)
        )
    ).all()
    if not page:
        return [], total or 0

    variants: dict[tuple[str, str], list[FleetVariant]] = defaultdict(list)
    for variant in await session.scalars(
        select(FleetVariant).where(
            tuple_(FleetVariant.package_identifier, FleetVariant.source).in_(
                [(row.package_identifier, row.source) for row in page]
            )
        )
    ):
        variants[(variant.package_identifier, variant.source)].append(variant)

    items = []
    for row in page:
        rows = variants[(row.package_identifier, row.source)]
        installed = sorted({v.installed_version for v in rows}, key=version_key, reverse=True)
        items.append(
            FleetUpdate(
                package_identifier=row.package_identifier,
                source=fleet_counts.source_of(row.source),
                name=max((v.name for v in rows), default=row.package_identifier),
                devices=row.devices,
                installed_versions=installed[:MAX_INSTALLED_VERSIONS_SHOWN],
                available_version=newest([v.available_version for v in rows]),
                explicit_targeting=any(v.explicit_targeting for v in rows),
                truncated=any(v.truncated for v in rows),
            )
        )
    return items, total or 0

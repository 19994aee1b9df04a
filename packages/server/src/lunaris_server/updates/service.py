"""Update reports: diff a device's full winget list against what is stored (the reads of
the result are in queries.py)."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import (
    Row,
    Table,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lunaris_protocol import DeviceStatus, UpdateItem, UpdateReport
from lunaris_server.core.errors import NotAuthenticated
from lunaris_server.core.security import token_hash
from lunaris_server.devices import events as device_announcements
from lunaris_server.devices import service as devices
from lunaris_server.devices import tags as device_tags
from lunaris_server.devices.models import Device
from lunaris_server.realtime.outbox import announce
from lunaris_server.updates import events as update_events
from lunaris_server.updates import fleet_counts
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent
from lunaris_server.updates.pairing import pair_leftovers


class EventKind(StrEnum):
    DETECTED = "detected"
    VERSION_CHANGED = "version_changed"
    RESOLVED = "resolved"
    INSTALL_STARTED = "install_started"
    INSTALL_SUCCEEDED = "install_succeeded"
    INSTALL_FAILED = "install_failed"


RowKey = tuple[str, str | None, str, str, str]
"""(package_identifier, source, installed_version, scope, user account): one stored row per
key."""


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


def _key(
    package_identifier: str, source: str | None, installed_version: str, scope: str, user: str
) -> RowKey:
    return (package_identifier, source, installed_version, scope, user)


def _collapse(items: list[UpdateItem]) -> dict[RowKey, _Incoming]:
    """Exact duplicates (same key) become one row with an instance count; first one wins."""
    rows: dict[RowKey, _Incoming] = {}
    for item in items:
        key = _key(
            item.package_identifier,
            item.source,
            item.installed_version,
            item.scope,
            item.user or "",
        )
        if key in rows:
            rows[key].instances += 1
        else:
            rows[key] = _Incoming(item)
    return rows


class _Stored(fleet_counts.Shown, Protocol):
    """A row of ``_STORED_ROWS``."""

    @property
    def id(self) -> int: ...
    @property
    def instances(self) -> int: ...


def _differs(row: _Stored, incoming: _Incoming) -> bool:
    item = incoming.item
    return (
        row.available_version != item.available_version
        or row.name != item.name
        or row.explicit_targeting != item.explicit_targeting
        or row.truncated != item.truncated
        or row.instances != incoming.instances
    )


# A report reads and writes plain rows through statements built once: ORM objects and their
# flush cost more than the diff itself, and a statement built per request costs SQLAlchemy
# a walk over it to find its compiled form in the cache.
_devices = cast(Table, Device.__table__)
_rows = cast(Table, DeviceUpdate.__table__)
_events = cast(Table, UpdateEvent.__table__)


def _scan_recorded(**values: Any) -> Update:
    """Marks the device with the token seen and scanned, which also locks its row (on
    PostgreSQL) until the commit; returns no row for an unknown or revoked token."""
    return (
        update(_devices)
        .where(_devices.c.token_hash == bindparam("b_token_hash"), _devices.c.revoked_at.is_(None))
        .values(
            last_seen_at=bindparam("b_now"),
            last_scan_at=bindparam("b_now"),
            token_used_at=func.coalesce(_devices.c.token_used_at, bindparam("b_now")),
            **values,
        )
        .returning(_devices.c.id, _devices.c.announced_status, _devices.c.updates_count)
    )


_GOOD_SCAN = _scan_recorded(
    updates_count=bindparam("b_updates_count"),
    last_good_scan_at=bindparam("b_now"),
    scan_error_code=None,
    scan_error_message=None,
    scan_error_at=None,
)
_FAILED_SCAN = _scan_recorded(
    scan_error_code=bindparam("b_error_code"),
    scan_error_message=bindparam("b_error_message"),
    scan_error_at=bindparam("b_now"),
)
_STORED_ROWS = select(
    _rows.c.id,
    _rows.c.package_identifier,
    _rows.c.source,
    _rows.c.installed_version,
    _rows.c.available_version,
    _rows.c.name,
    _rows.c.explicit_targeting,
    _rows.c.truncated,
    _rows.c.instances,
    _rows.c.scope,
    _rows.c.user_account,
).where(_rows.c.device_id == bindparam("b_device_id"))
_UPDATE_ROW = (
    update(_rows)
    .where(_rows.c.id == bindparam("b_id"))
    .values(
        installed_version=bindparam("b_installed_version"),
        available_version=bindparam("b_available_version"),
        name=bindparam("b_name"),
        explicit_targeting=bindparam("b_explicit_targeting"),
        truncated=bindparam("b_truncated"),
        instances=bindparam("b_instances"),
    )
)
_INSERT_ROW = insert(_rows)
_DELETE_ROWS = delete(_rows).where(_rows.c.id.in_(bindparam("b_ids", expanding=True)))
_INSERT_EVENT = insert(_events)


def _row_update(row_id: int, incoming: _Incoming) -> dict[str, Any]:
    item = incoming.item
    return {
        "b_id": row_id,
        "b_installed_version": item.installed_version,
        "b_available_version": item.available_version,
        "b_name": item.name,
        "b_explicit_targeting": item.explicit_targeting,
        "b_truncated": item.truncated,
        "b_instances": incoming.instances,
    }


async def apply_report(
    session: AsyncSession, *, device_token: str, report: UpdateReport, now: datetime
) -> ReportOutcome:
    """Records the scan of the device the token speaks for and brings its stored rows in
    line with the report, recording one event per change.

    The token is checked as ``devices.authenticate`` does (never a revoked device's) by the
    first statement, which writes the device row and so locks it on PostgreSQL until the
    request's commit: two reports from one device never interleave. An identical report
    costs that statement and one read.
    """
    connection = await session.connection()
    incoming = _collapse(report.updates) if report.scan_error is None else {}
    device = await _record_scan(
        connection, device_token=device_token, report=report, rows=len(incoming), now=now
    )
    if device.announced_status != DeviceStatus.ONLINE:
        await _came_online(session, device_id=device.id, now=now)
    if report.tags is not None and await device_tags.set_agent_tags(
        session, device_id=device.id, tags=report.tags
    ):
        # Seldom (a PC's config changed): its pages show the new tags.
        changed = await session.get(Device, device.id)
        if changed is not None:
            announce(session, device_announcements.device_status(changed))
    if report.scan_error is not None:
        return ReportOutcome(scan_failed=True, unchanged=device.updates_count)

    stored: dict[RowKey, _Stored] = {
        _key(
            row.package_identifier, row.source, row.installed_version, row.scope, row.user_account
        ): row
        for row in await connection.execute(_STORED_ROWS, {"b_device_id": device.id})
    }
    rows_before, rows_after = list(stored.values()), [new.item for new in incoming.values()]
    outcome = ReportOutcome()
    updated: list[dict[str, Any]] = []
    inserted: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    def event(
        kind: EventKind, shown: fleet_counts.Shown, details: dict[str, Any] | None = None
    ) -> None:
        # ``shown``: the update as it is after the change (before it, for a resolution). One
        # in a user's profile names the user (a reported row says ``user``, a stored one
        # ``user_account``).
        user = getattr(shown, "user", None) or getattr(shown, "user_account", "")
        if user:
            details = {**(details or {}), "user": user}
        events.append(
            {
                "device_id": device.id,
                "package_identifier": shown.package_identifier,
                "source": shown.source,
                "kind": kind.value,
                "from_version": shown.installed_version,
                "to_version": shown.available_version,
                "details": details,
                "at": now,
                "command_id": None,
            }
        )

    for key in stored.keys() & incoming.keys():
        row, new = stored.pop(key), incoming.pop(key)
        if not _differs(row, new):
            outcome.unchanged += 1
            continue
        updated.append(_row_update(row.id, new))
        outcome.changed.append(row.package_identifier)
        if row.available_version != new.item.available_version:
            event(
                EventKind.VERSION_CHANGED,
                new.item,
                {"previous_available_version": row.available_version},
            )

    # What is left unmatched on both sides for one package is the same update whose installed
    # version moved (a partial upgrade): a change, not a resolution plus a new detection.
    pairing = pair_leftovers(
        stored, incoming, group=lambda k: (k[0], k[1], k[3], k[4]), version=lambda k: k[2]
    )
    for row, new in pairing.moved:
        updated.append(_row_update(row.id, new))
        outcome.changed.append(row.package_identifier)
        details = {
            "previous_installed_version": row.installed_version,
            "previous_available_version": row.available_version,
        }
        event(EventKind.VERSION_CHANGED, new.item, details)
    for new in pairing.new:
        item = new.item
        inserted.append(
            {
                "device_id": device.id,
                "package_identifier": item.package_identifier,
                "name": item.name,
                "installed_version": item.installed_version,
                "available_version": item.available_version,
                "source": item.source,
                "explicit_targeting": item.explicit_targeting,
                "truncated": item.truncated,
                "instances": new.instances,
                "first_seen_at": now,
                "scope": item.scope,
                "user_account": item.user or "",
            }
        )
        outcome.added.append(item.package_identifier)
        event(EventKind.DETECTED, item)
    for row in pairing.gone:
        outcome.removed.append(row.package_identifier)
        event(EventKind.RESOLVED, row)

    # Each a single statement whatever the number of rows.
    if updated:
        await connection.execute(_UPDATE_ROW, updated)
    if inserted:
        await connection.execute(_INSERT_ROW, inserted)
    if pairing.gone:
        await connection.execute(_DELETE_ROWS, {"b_ids": [row.id for row in pairing.gone]})
    if events:
        await connection.execute(_INSERT_EVENT, events)
    if outcome.has_changes:
        # Last, so the shared counter rows stay locked only until the commit that follows.
        await fleet_counts.count_change(
            session,
            before=[fleet_counts.variant_of(row) for row in rows_before],
            after=[fleet_counts.variant_of(item) for item in rows_after],
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
            update_events.device_updates_changed(
                device.id,
                updates_count=len(rows_after),
                added=outcome.added,
                changed=outcome.changed,
                removed=outcome.removed,
            ),
        )
    return outcome


async def _record_scan(
    connection: AsyncConnection,
    *,
    device_token: str,
    report: UpdateReport,
    rows: int,
    now: datetime,
) -> Row[str, str, int]:
    """The reporting device's (id, announced status, updates count), once its row records the
    scan (``rows`` waiting after a good one). NotAuthenticated for an unknown or revoked
    token."""
    parameters: dict[str, Any] = {"b_token_hash": token_hash(device_token), "b_now": now}
    if report.scan_error is None:
        parameters["b_updates_count"] = rows
        recorded = await connection.execute(_GOOD_SCAN, parameters)
    else:
        # A failed scan says nothing about what is installed: keep the last good list.
        parameters["b_error_code"] = report.scan_error.code
        parameters["b_error_message"] = report.scan_error.message
        recorded = await connection.execute(_FAILED_SCAN, parameters)
    device = recorded.one_or_none()
    if device is None:
        raise NotAuthenticated("unknown or revoked device token")
    return device


async def _came_online(session: AsyncSession, *, device_id: str, now: datetime) -> None:
    """A device announced offline reports: announced back online like a heartbeat would be.
    Seldom, so through the ORM object the announcement is made of."""
    device = await session.get_one(Device, device_id)
    devices.mark_seen(device, now=now)
    await session.flush()
    announce(session, device_announcements.device_status(device))

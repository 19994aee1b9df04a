"""Inventory reports: a device's full ``winget list`` diffed against what is stored, in one
transaction with its history events and the fleet's counts; or only a digest, which costs
one statement when the server holds it.

The first list a device reports is its baseline: stored and counted, but not written into
its history as 150 "installed" events. From then on every app installed, removed or moved
to another version is an event on the device's timeline (``update_events``, kinds
``software_*``), with the versions before and after.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lunaris_protocol import (
    DeviceSoftwareChanged,
    DeviceSoftwareChangedData,
    InstalledItem,
    InventoryReport,
    list_digest,
)
from lunaris_server.core.security import token_hash
from lunaris_server.core.versions import sort_key
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.realtime.outbox import announce
from lunaris_server.software import fleet_counts
from lunaris_server.software.models import DeviceInventory, DeviceSoftware
from lunaris_server.updates.models import UpdateEvent
from lunaris_server.updates.pairing import pair_leftovers


class SoftwareEvent(StrEnum):
    INSTALLED = "software_installed"
    REMOVED = "software_removed"
    VERSION_CHANGED = "software_version_changed"


RowKey = tuple[str, str | None, str, str, str]
"""(package_identifier, source, version, scope, user account): one stored row per key."""


@dataclass(slots=True)
class InventoryOutcome:
    full_list_needed: bool = False
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class _Incoming:
    item: InstalledItem
    instances: int = 1


@dataclass(slots=True)
class _Diff:
    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    events: list[tuple[SoftwareEvent, str, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    unchanged: int = 0

    @property
    def changes(self) -> int:
        return len(self.inserted) + len(self.updated) + len(self.deleted)


_devices = cast(Table, Device.__table__)
_inventories = cast(Table, DeviceInventory.__table__)
_rows = cast(Table, DeviceSoftware.__table__)
_events = cast(Table, UpdateEvent.__table__)

# The one statement a steady PC's report costs: its token and its digest both match.
_KNOWN_DIGEST = (
    update(_inventories)
    .where(
        _inventories.c.device_id == _devices.c.id,
        _devices.c.token_hash == bindparam("b_token_hash"),
        _devices.c.revoked_at.is_(None),
        _inventories.c.digest == bindparam("b_digest"),
    )
    .values(reported_at=bindparam("b_now"), error_code=None, error_message=None, error_at=None)
)
_STORED_ROWS = select(
    _rows.c.id,
    _rows.c.package_identifier,
    _rows.c.source,
    _rows.c.version,
    _rows.c.name,
    _rows.c.truncated,
    _rows.c.instances,
    _rows.c.scope,
    _rows.c.user_account,
).where(_rows.c.device_id == bindparam("b_device_id"))
_UPDATE_ROW = (
    update(_rows)
    .where(_rows.c.id == bindparam("b_id"))
    .values(
        version=bindparam("b_version"),
        version_key=bindparam("b_version_key"),
        name=bindparam("b_name"),
        truncated=bindparam("b_truncated"),
        instances=bindparam("b_instances"),
    )
)
_DELETE_ROWS = delete(_rows).where(_rows.c.id.in_(bindparam("b_ids", expanding=True)))


def _upsert_inventory(dialect: str) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_(_inventories)
    columns = ("digest", "apps", "reported_at", "changed_at", "error_code", "error_message")
    return statement.on_conflict_do_update(
        index_elements=[_inventories.c.device_id],
        set_={
            **{name: getattr(statement.excluded, name) for name in columns},
            "error_at": statement.excluded.error_at,
        },
    )


_UPSERT_INVENTORY = {name: _upsert_inventory(name) for name in ("postgresql", "sqlite")}


async def apply_inventory(
    session: AsyncSession, *, device_token: str, report: InventoryReport, now: datetime
) -> InventoryOutcome:
    """Records the inventory of the device the token speaks for (NotAuthenticated for an
    unknown or revoked one). A digest alone that the server holds records the report's time
    in one statement; one it does not hold asks for the list and changes nothing."""
    connection = await session.connection()
    if report.software is None and report.scan_error is None:
        known = await connection.execute(
            _KNOWN_DIGEST,
            {"b_token_hash": token_hash(device_token), "b_digest": report.digest, "b_now": now},
        )
        if getattr(known, "rowcount", 0) == 1:
            return InventoryOutcome()
        await devices.authenticate(session, device_token=device_token, lock=False)
        return InventoryOutcome(full_list_needed=True)
    # The device row's lock (PostgreSQL) orders this device's reports and its revocation.
    device = await devices.authenticate(session, device_token=device_token)
    inventory = await session.get(DeviceInventory, device.id, with_for_update=True)
    if report.scan_error is not None:
        await _record_failure(session, device.id, inventory, report, now)
        return InventoryOutcome()
    assert report.software is not None
    digest = list_digest(report.software)
    if inventory is not None and inventory.digest == digest:
        inventory.reported_at = now
        inventory.error_code = inventory.error_message = inventory.error_at = None
        return InventoryOutcome(unchanged=inventory.apps)
    incoming = _collapse(report.software)
    stored = {
        (row.package_identifier, row.source, row.version, row.scope, row.user_account): row
        for row in await connection.execute(_STORED_ROWS, {"b_device_id": device.id})
    }
    before = [
        fleet_counts.Installed(r.package_identifier, r.version, r.name) for r in stored.values()
    ]
    diff = _diff(stored, incoming, device_id=device.id, now=now)
    baseline = inventory is None or inventory.reported_at is None
    await _write(connection, device.id, diff, baseline=baseline, now=now)
    await fleet_counts.count_change(
        session,
        before=before,
        after=[
            fleet_counts.Installed(new.item.package_identifier, new.item.version, new.item.name)
            for new in incoming.values()
        ],
    )
    changed = diff.changes > 0
    await connection.execute(
        _UPSERT_INVENTORY[connection.dialect.name],
        {
            "device_id": device.id,
            "digest": digest,
            "apps": len(incoming),
            "reported_at": now,
            "changed_at": now if changed or inventory is None else inventory.changed_at,
            "error_code": None,
            "error_message": None,
            "error_at": None,
        },
    )
    if inventory is not None:
        session.expire(inventory)  # written by the statement above
    if changed or baseline:
        announce(
            session,
            DeviceSoftwareChanged(
                data=DeviceSoftwareChangedData(
                    device_id=device.id,
                    apps=len(incoming),
                    added_count=len(diff.inserted),
                    changed_count=len(diff.updated),
                    removed_count=len(diff.deleted),
                )
            ),
        )
    return InventoryOutcome(
        added=len(diff.inserted),
        changed=len(diff.updated),
        removed=len(diff.deleted),
        unchanged=diff.unchanged,
    )


def _collapse(items: list[InstalledItem]) -> dict[RowKey, _Incoming]:
    rows: dict[RowKey, _Incoming] = {}
    for item in items:
        key = (item.package_identifier, item.source, item.version, item.scope, item.user or "")
        if key in rows:
            rows[key].instances += 1
        else:
            rows[key] = _Incoming(item)
    return rows


def _diff(stored: dict[RowKey, Any], incoming: dict[RowKey, _Incoming], **row: Any) -> _Diff:
    diff = _Diff()
    stored, incoming = dict(stored), dict(incoming)
    for key in stored.keys() & incoming.keys():
        old, new = stored.pop(key), incoming.pop(key)
        item = new.item
        if (old.name, old.truncated, old.instances) == (item.name, item.truncated, new.instances):
            diff.unchanged += 1
        else:
            diff.updated.append(_row_update(old.id, new))
    # What is left of one package (and source, scope, user) on both sides moved to another
    # version.
    pairing = pair_leftovers(
        stored, incoming, group=lambda k: (k[0], k[1], k[3], k[4]), version=lambda k: k[2]
    )
    for old, new in pairing.moved:
        diff.updated.append(_row_update(old.id, new))
        diff.events.append(
            (
                SoftwareEvent.VERSION_CHANGED,
                old.package_identifier,
                old.source,
                old.version,
                new.item.version,
            )
        )
    for new in pairing.new:
        item = new.item
        diff.inserted.append(
            {
                "device_id": row["device_id"],
                "package_identifier": item.package_identifier,
                "name": item.name,
                "version": item.version,
                "version_key": sort_key(item.version),
                "source": item.source,
                "truncated": item.truncated,
                "instances": new.instances,
                "first_seen_at": row["now"],
                "scope": item.scope,
                "user_account": item.user or "",
            }
        )
        diff.events.append(
            (SoftwareEvent.INSTALLED, item.package_identifier, item.source, None, item.version)
        )
    for old in pairing.gone:
        diff.deleted.append(old.id)
        diff.events.append(
            (SoftwareEvent.REMOVED, old.package_identifier, old.source, old.version, None)
        )
    return diff


def _row_update(row_id: int, new: _Incoming) -> dict[str, Any]:
    return {
        "b_id": row_id,
        "b_version": new.item.version,
        "b_version_key": sort_key(new.item.version),
        "b_name": new.item.name,
        "b_truncated": new.item.truncated,
        "b_instances": new.instances,
    }


async def _write(
    connection: AsyncConnection, device_id: str, diff: _Diff, *, baseline: bool, now: datetime
) -> None:
    """Each a single statement whatever the number of rows."""
    if diff.updated:
        await connection.execute(_UPDATE_ROW, diff.updated)
    if diff.inserted:
        await connection.execute(insert(_rows), diff.inserted)
    if diff.deleted:
        await connection.execute(_DELETE_ROWS, {"b_ids": diff.deleted})
    if diff.events and not baseline:
        await connection.execute(
            insert(_events),
            [
                {
                    "device_id": device_id,
                    "package_identifier": package,
                    "source": source,
                    "kind": kind.value,
                    "from_version": before,
                    "to_version": after,
                    "details": None,
                    "at": now,
                    "command_id": None,
                }
                for kind, package, source, before, after in diff.events
            ],
        )


async def _record_failure(
    session: AsyncSession,
    device_id: str,
    inventory: DeviceInventory | None,
    report: InventoryReport,
    now: datetime,
) -> None:
    """A failed ``winget list`` says nothing about what is installed: the last list stays."""
    assert report.scan_error is not None
    if inventory is None:
        inventory = DeviceInventory(
            device_id=device_id, digest=None, apps=0, reported_at=None, changed_at=None
        )
        session.add(inventory)
    inventory.error_code = report.scan_error.code
    inventory.error_message = report.scan_error.message
    inventory.error_at = now
    await session.flush()

"""Fleet-wide counts the report diff keeps up to date, in the same transaction as the rows
it changes (as it keeps ``devices.updates_count``): devices waiting per package, waiting
rows per package variant, and updates detected and resolved per day. The console reads
these few rows instead of aggregating every device's updates on each request.

Counters change by atomic ``INSERT ... ON CONFLICT DO UPDATE SET n = n + delta``, so reports
of different devices touching the same package never lose a count. On PostgreSQL each
transaction takes its counter rows' locks in one global order (packages, then variants,
then the day's row, each sorted by key), so two reports can wait for each other but never
deadlock.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.updates.models import DeviceUpdate, FleetPackage, FleetVariant, UpdateActivity

ACTIVITY_SHARDS = 16
"""Rows per day of ``update_activity``: every report that changes something adds to its
day, and one row would make all of them queue behind each other's commits."""


def source_key(source: str | None) -> str:
    """The counters' key for a source ("" for none)."""
    return source or ""


def source_of(key: str) -> str | None:
    return key or None


@dataclass(frozen=True, slots=True)
class Variant:
    """What the fleet table shows about one waiting row."""

    package_identifier: str
    source: str
    installed_version: str
    available_version: str
    name: str
    explicit_targeting: bool
    truncated: bool

    @property
    def package(self) -> tuple[str, str]:
        return (self.package_identifier, self.source)

    @property
    def key(self) -> str:
        # Migration 0003 computes the same key for the rows it backfills: keep them in step.
        shown = [
            self.package_identifier,
            self.source,
            self.installed_version,
            self.available_version,
            self.name,
            self.explicit_targeting,
            self.truncated,
        ]
        return hashlib.sha256(json.dumps(shown).encode()).hexdigest()


class Shown(Protocol):
    """A waiting row as the fleet table shows it: a stored row, or a reported one."""

    @property
    def package_identifier(self) -> str: ...
    @property
    def source(self) -> str | None: ...
    @property
    def installed_version(self) -> str: ...
    @property
    def available_version(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def explicit_targeting(self) -> bool: ...
    @property
    def truncated(self) -> bool: ...


def variant_of(row: Shown) -> Variant:
    return Variant(
        package_identifier=row.package_identifier,
        source=source_key(row.source),
        installed_version=row.installed_version,
        available_version=row.available_version,
        name=row.name,
        explicit_targeting=bool(row.explicit_targeting),
        truncated=bool(row.truncated),
    )


async def count_change(
    session: AsyncSession, *, before: Iterable[Variant], after: Iterable[Variant]
) -> None:
    """One device's waiting rows went from ``before`` to ``after``: adjusts the counters.

    A package counts the device once however many of its rows name it; a variant counts
    rows.
    """
    old, new = Counter(before), Counter(after)
    rows = new.copy()
    rows.subtract(old)
    variant_deltas = {variant: delta for variant, delta in rows.items() if delta}
    old_packages = {variant.package for variant in old}
    new_packages = {variant.package for variant in new}
    package_deltas = dict.fromkeys(new_packages - old_packages, 1)
    package_deltas.update(dict.fromkeys(old_packages - new_packages, -1))
    if package_deltas:
        await _add_to_packages(session, package_deltas)
    if variant_deltas:
        await _add_to_variants(session, variant_deltas)


async def device_rows_counted(session: AsyncSession, *, device_id: str, counted: bool) -> None:
    """Adds a device's waiting rows to the counts, or takes them out: the counts cover the
    devices the console lists, so revoking a device (or deleting it) must take its rows out
    first, and enrolling it again puts them back."""
    rows = await session.scalars(select(DeviceUpdate).where(DeviceUpdate.device_id == device_id))
    variants = [variant_of(row) for row in rows]
    if counted:
        await count_change(session, before=[], after=variants)
    else:
        await count_change(session, before=variants, after=[])


async def record_activity(
    session: AsyncSession, *, device_id: str, at: datetime, detected: int, resolved: int
) -> None:
    """Adds a report's detections and resolutions to its UTC day."""
    if not (detected or resolved):
        return
    connection = await session.connection()
    await connection.execute(
        _UPSERTS[connection.dialect.name].activity,
        {
            "day": _utc_day(at),
            "shard": _shard(device_id),
            "detected": detected,
            "resolved": resolved,
        },
    )


async def _add_to_packages(session: AsyncSession, deltas: dict[tuple[str, str], int]) -> None:
    connection = await session.connection()
    keys = sorted(deltas)  # the lock order
    # One statement, rows in this order. It returns the counters as they now stand (locked
    # until the commit), so only those that reached zero cost a DELETE, and seldom.
    counted = await connection.execute(
        _UPSERTS[connection.dialect.name].packages,
        [{"package_identifier": p, "source": s, "devices": deltas[(p, s)]} for p, s in keys],
    )
    emptied = [(package, source) for package, source, devices in counted if devices <= 0]
    if emptied:
        await connection.execute(_DELETE_EMPTY_PACKAGES, {"b_keys": emptied})


async def _add_to_variants(session: AsyncSession, deltas: dict[Variant, int]) -> None:
    connection = await session.connection()
    keyed = sorted((variant.key, variant, delta) for variant, delta in deltas.items())
    counted = await connection.execute(
        _UPSERTS[connection.dialect.name].variants,
        [
            {
                "key": key,
                "package_identifier": variant.package_identifier,
                "source": variant.source,
                "installed_version": variant.installed_version,
                "available_version": variant.available_version,
                "name": variant.name,
                "explicit_targeting": variant.explicit_targeting,
                "truncated": variant.truncated,
                "rows": delta,
            }
            for key, variant, delta in keyed
        ],
    )
    emptied = [key for key, rows in counted if rows <= 0]
    if emptied:
        await connection.execute(_DELETE_EMPTY_VARIANTS, {"b_keys": emptied})


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


_PACKAGES = _table(FleetPackage)
_VARIANTS = _table(FleetVariant)
_ACTIVITY = _table(UpdateActivity)


@dataclass(frozen=True, slots=True)
class _Upserts:
    """The counters' ``INSERT ... ON CONFLICT DO UPDATE`` in one dialect (both databases have
    it). Built once: a statement built per report costs SQLAlchemy a walk over it to find
    its compiled form in the cache."""

    packages: Any
    variants: Any
    activity: Any

    @classmethod
    def build(cls, insert: Callable[[Table], Any]) -> "_Upserts":
        packages, variants, activity = insert(_PACKAGES), insert(_VARIANTS), insert(_ACTIVITY)
        return cls(
            packages=packages.on_conflict_do_update(
                index_elements=[_PACKAGES.c.package_identifier, _PACKAGES.c.source],
                set_={"devices": _PACKAGES.c.devices + packages.excluded.devices},
            ).returning(_PACKAGES.c.package_identifier, _PACKAGES.c.source, _PACKAGES.c.devices),
            variants=variants.on_conflict_do_update(
                index_elements=[_VARIANTS.c.key],
                set_={"rows": _VARIANTS.c.rows + variants.excluded.rows},
            ).returning(_VARIANTS.c.key, _VARIANTS.c.rows),
            activity=activity.on_conflict_do_update(
                index_elements=[_ACTIVITY.c.day, _ACTIVITY.c.shard],
                set_={
                    "detected": _ACTIVITY.c.detected + activity.excluded.detected,
                    "resolved": _ACTIVITY.c.resolved + activity.excluded.resolved,
                },
            ),
        )


_UPSERTS = {
    "postgresql": _Upserts.build(postgresql.insert),
    "sqlite": _Upserts.build(sqlite.insert),
}
_DELETE_EMPTY_PACKAGES = delete(_PACKAGES).where(
    tuple_(_PACKAGES.c.package_identifier, _PACKAGES.c.source).in_(
        bindparam("b_keys", expanding=True)
    ),
    _PACKAGES.c.devices <= 0,
)
_DELETE_EMPTY_VARIANTS = delete(_VARIANTS).where(
    _VARIANTS.c.key.in_(bindparam("b_keys", expanding=True)), _VARIANTS.c.rows <= 0
)


def _utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _shard(device_id: str) -> int:
    # Stable across processes and restarts (unlike hash()); any spread of devices will do.
    return int(hashlib.sha256(device_id.encode()).hexdigest()[:8], 16) % ACTIVITY_SHARDS

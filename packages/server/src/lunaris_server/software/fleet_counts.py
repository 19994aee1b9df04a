"""The fleet's counts of installed software, kept by the inventory diff in the same
transaction as the rows they count: devices per package (a title), and devices per version
of it. The Software page reads these rows instead of aggregating every device's inventory.

As the updates' counters (updates/fleet_counts.py): atomic ``INSERT ... ON CONFLICT DO
UPDATE SET devices = devices + delta``, rows locked in one order (titles, then versions,
each sorted by key) so two reports never deadlock, and a row that reaches zero deleted.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.core.versions import sort_key
from lunaris_server.software.models import DeviceSoftware, SoftwareTitle, SoftwareVersion


@dataclass(frozen=True, slots=True)
class Installed:
    """What the counters know of one installed row."""

    package_identifier: str
    version: str
    name: str


async def count_change(
    session: AsyncSession, *, before: Iterable[Installed], after: Iterable[Installed]
) -> None:
    """One device's inventory went from ``before`` to ``after``. A device counts once per
    package and once per version of it, however many rows (sources, instances) say so."""
    old, new = list(before), list(after)
    names = {row.package_identifier: row.name for row in new}
    old_titles = {row.package_identifier for row in old}
    new_titles = set(names)
    titles = dict.fromkeys(new_titles - old_titles, 1) | dict.fromkeys(old_titles - new_titles, -1)
    old_versions = {(row.package_identifier, row.version) for row in old}
    new_versions = {(row.package_identifier, row.version) for row in new}
    versions = dict.fromkeys(new_versions - old_versions, 1) | dict.fromkeys(
        old_versions - new_versions, -1
    )
    connection = await session.connection()
    upserts = _UPSERTS[connection.dialect.name]
    if titles:
        keys = sorted(titles)  # the lock order
        counted = await connection.execute(
            upserts.titles,
            [
                {"package_identifier": k, "name": names.get(k, k), "devices": titles[k]}
                for k in keys
            ],
        )
        emptied = [package for package, devices in counted if devices <= 0]
        if emptied:
            await connection.execute(_DELETE_EMPTY_TITLES, {"b_keys": emptied})
    if versions:
        keys_v = sorted(versions)
        counted = await connection.execute(
            upserts.versions,
            [
                {
                    "package_identifier": package,
                    "version": version,
                    "version_key": sort_key(version),
                    "devices": versions[(package, version)],
                }
                for package, version in keys_v
            ],
        )
        emptied_v = [(package, version) for package, version, devices in counted if devices <= 0]
        if emptied_v:
            await connection.execute(_DELETE_EMPTY_VERSIONS, {"b_keys": emptied_v})


async def device_counted(session: AsyncSession, *, device_id: str, counted: bool) -> None:
    """Adds a device's inventory to the counts, or takes it out: the counts cover the devices
    the console lists (revoking takes a device out, enrolling it again puts it back)."""
    rows = [
        Installed(row.package_identifier, row.version, row.name)
        for row in await session.execute(
            select(
                DeviceSoftware.package_identifier, DeviceSoftware.version, DeviceSoftware.name
            ).where(DeviceSoftware.device_id == device_id)
        )
    ]
    if counted:
        await count_change(session, before=[], after=rows)
    else:
        await count_change(session, before=rows, after=[])


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


_TITLES = _table(SoftwareTitle)
_VERSIONS = _table(SoftwareVersion)


@dataclass(frozen=True, slots=True)
class _Upserts:
    titles: Any
    versions: Any

    @classmethod
    def build(cls, insert: Callable[[Table], Any]) -> "_Upserts":
        titles, versions = insert(_TITLES), insert(_VERSIONS)
        return cls(
            titles=titles.on_conflict_do_update(
                index_elements=[_TITLES.c.package_identifier],
                set_={"devices": _TITLES.c.devices + titles.excluded.devices},
            ).returning(_TITLES.c.package_identifier, _TITLES.c.devices),
            versions=versions.on_conflict_do_update(
                index_elements=[_VERSIONS.c.package_identifier, _VERSIONS.c.version],
                set_={"devices": _VERSIONS.c.devices + versions.excluded.devices},
            ).returning(_VERSIONS.c.package_identifier, _VERSIONS.c.version, _VERSIONS.c.devices),
        )


_UPSERTS = {
    "postgresql": _Upserts.build(postgresql.insert),
    "sqlite": _Upserts.build(sqlite.insert),
}
_DELETE_EMPTY_TITLES = delete(_TITLES).where(
    _TITLES.c.package_identifier.in_(bindparam("b_keys", expanding=True)),
    _TITLES.c.devices <= 0,
)
_DELETE_EMPTY_VERSIONS = delete(_VERSIONS).where(
    tuple_(_VERSIONS.c.package_identifier, _VERSIONS.c.version).in_(
        bindparam("b_keys", expanding=True)
    ),
    _VERSIONS.c.devices <= 0,
)

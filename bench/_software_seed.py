"""A fleet's software inventory inserted in bulk: the rows the inventory diff would have
stored (``device_software`` with each version's sort key, ``device_inventories``) and the
counters it would have kept (``software_titles``, ``software_versions``). Through the agent
API 15 million rows would take hours; here PostgreSQL gets them by COPY, SQLite by batched
executemany, a few thousand devices at a time."""

from __future__ import annotations

import random
import secrets
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench._software_catalog import App, Keys, common_apps, unique_entry
from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.db.engine import Database
from lunaris_server.devices.models import Device

COMMON_APPS = 300
BYTES_PER_ROW = 600
"""Disk a ``device_software`` row takes with its share of the indexes, and some margin
(measured: about 400 on both databases)."""
SOFTWARE_COLUMNS = (
    "device_id",
    "package_identifier",
    "name",
    "version",
    "version_key",
    "source",
    "truncated",
    "instances",
    "first_seen_at",
)
INVENTORY_COLUMNS = ("device_id", "digest", "apps", "reported_at", "changed_at")


@dataclass(frozen=True)
class Seeded:
    devices: int
    rows: int
    titles: int
    versions: int
    device_id: str
    """A device with a typical list, for its page."""


def check_disk(url: str, devices: int, apps: int, data_directory: str | None) -> None:
    """Refuses (SystemExit, saying how much is missing) when the database's disk is short."""
    if url.startswith("sqlite"):
        where = Path(make_url(url).database or ".").parent
    else:
        where = (
            Path(data_directory) if data_directory and Path(data_directory).is_dir() else Path("/")
        )
    needed = devices * apps * BYTES_PER_ROW + 2 * 1024**3
    free = shutil.disk_usage(where).free
    if free < needed:
        raise SystemExit(
            f"software-pages: {devices:,} devices x {apps} apps need about "
            f"{needed / 1024**3:.1f} GiB free where the database lives ({where}), and "
            f"{free / 1024**3:.1f} GiB are: free some, or run with fewer --devices"
        )


async def seed_inventory(url: str, devices: int, *, batch: int = 2000) -> Seeded:
    rng = random.Random(42)
    now = datetime.now(UTC)
    apps = common_apps(COMMON_APPS)
    slots = {app.package_identifier: _slots(app) for app in apps}
    keys = Keys()
    days = [now - timedelta(days=d, hours=rng.uniform(0, 24)) for d in range(90)]
    # SQLite's are strings already: converting 15 million values one by one takes a minute.
    stamps: list[Any] = (
        [_sqlite_value(day) for day in days] if url.startswith("sqlite") else list(days)
    )
    titles: Counter[str] = Counter()
    names: dict[str, str] = {}
    versions: Counter[tuple[str, str]] = Counter()
    rows_total = 0
    sample_device = ""
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await _drop_indexes(connection)
        for start in range(0, devices, batch):
            device_rows: list[dict[str, Any]] = []
            software: list[tuple[Any, ...]] = []
            inventories: list[tuple[Any, ...]] = []
            for n in range(start, min(devices, start + batch)):
                device_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                device_rows.append(_device(device_id, n, now))
                installed = [app for app in apps if rng.random() < app.share]
                installed += [unique_entry(n, i) for i in range(rng.randint(2, 8))]
                for app in installed:
                    table = slots[app.package_identifier] if app.share else app.versions
                    version = table[rng.randrange(len(table))]
                    titles[app.package_identifier] += 1
                    names.setdefault(app.package_identifier, app.name)
                    versions[(app.package_identifier, version)] += 1
                    software.append(
                        (
                            device_id,
                            app.package_identifier,
                            app.name,
                            version,
                            keys(version),
                            app.source,
                            False,
                            1,
                            stamps[rng.randrange(len(stamps))],
                        )
                    )
                inventories.append((device_id, secrets.token_hex(32), len(installed), now, days[0]))
                if n == devices // 2:
                    sample_device = device_id
            rows_total += len(software)
            async with database.engine.begin() as connection:
                await connection.execute(insert(Device), device_rows)
                await _bulk(
                    connection, "device_software", SOFTWARE_COLUMNS, software, convert=False
                )
                await _bulk(connection, "device_inventories", INVENTORY_COLUMNS, inventories)
        async with database.engine.begin() as connection:
            await _bulk(
                connection,
                "software_titles",
                ("package_identifier", "name", "devices"),
                [(package, names[package], count) for package, count in titles.items()],
            )
            await _bulk(
                connection,
                "software_versions",
                ("package_identifier", "version", "version_key", "devices"),
                [(p, v, keys(v), count) for (p, v), count in versions.items()],
            )
        async with database.engine.begin() as connection:
            await _create_indexes(connection)
        # Planner statistics and visibility map as autovacuum would leave them (outside a
        # transaction: PostgreSQL keeps nothing of an ANALYZE that was rolled back).
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(
                "VACUUM ANALYZE" if database.engine.dialect.name == "postgresql" else "ANALYZE"
            )
    finally:
        await database.dispose()
    return Seeded(devices, rows_total, len(titles), len(versions), sample_device)


_BULK_INDEXES = {
    "ix_device_software_device_id": "device_software (device_id)",
    "ix_device_software_package_version": ("device_software (package_identifier, version_key, id)"),
}
"""Built once after the rows (as a bulk load does) instead of grown one random insert at a
time: with PostgreSQL's default 128 MB of shared buffers that made the seed 13 minutes."""


async def _drop_indexes(connection: AsyncConnection) -> None:
    for name in _BULK_INDEXES:
        await connection.execute(text(f"DROP INDEX {name}"))


async def _create_indexes(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    for name, target in _BULK_INDEXES.items():
        await connection.execute(text(f"CREATE INDEX {name} ON {target}"))


def _slots(app: App) -> list[str]:
    """64 draws of the app's versions by their weights: a version is one index away."""
    total = sum(app.weights)
    table: list[str] = []
    for version, weight in zip(app.versions, app.weights, strict=True):
        table += [version] * max(1, round(64 * weight / total))
    return table


def _device(device_id: str, n: int, now: datetime) -> dict[str, Any]:
    return {
        "id": device_id,
        "hostname": f"PC-{n:06}",
        "os_version": "Windows 11 Pro 23H2 (10.0.22631.4460)",
        "agent_version": "0.1.0",
        "token_hash": token_hash(new_token(TokenKind.DEVICE)),
        "enrolled_at": now - timedelta(days=90),
        "last_seen_at": now,
        "announced_status": "online",
        "updates_count": 0,
    }


async def _bulk(
    connection: AsyncConnection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    convert: bool = True,
) -> None:
    """COPY on PostgreSQL (through the session's own connection, in its transaction);
    executemany of plain tuples on SQLite (datetimes as SQLAlchemy stores them there)."""
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if connection.dialect.name == "postgresql":
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    if convert:
        rows = [tuple(_sqlite_value(value) for value in row) for row in rows]
    placeholders = ", ".join("?" for _ in columns)
    await driver.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
        rows,
    )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


async def disk_use(url: str) -> int:
    """Bytes the database takes on disk."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            size = await connection.scalar(text("SELECT pg_database_size(current_database())"))
            return int(size or 0)
    finally:
        await database.dispose()


async def data_directory(url: str) -> str | None:
    """PostgreSQL's data directory (None when the role may not read it)."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            found = await connection.scalar(text("SHOW data_directory"))
            return str(found)
    except Exception:
        return None
    finally:
        await database.dispose()


async def seeded_in(url: str) -> Seeded:
    """What an earlier ``seed_inventory`` put in the database at ``url``."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            counts = [
                int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
                for table in ("devices", "device_software", "software_titles", "software_versions")
            ]
            device_id = await connection.scalar(
                text("SELECT device_id FROM device_inventories ORDER BY device_id LIMIT 1")
            )
    finally:
        await database.dispose()
    return Seeded(counts[0], counts[1], counts[2], counts[3], str(device_id))

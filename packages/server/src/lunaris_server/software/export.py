"""The inventory as CSV, streamed a batch at a time with flat memory (a package on every PC of
a large fleet is a CSV of a hundred thousand rows). Each stream reads with a session of its
own: the request's is closed by the time the body is sent. Times are ISO 8601 in UTC."""

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_

from lunaris_server.console.csv_export import csv_lines
from lunaris_server.db import Database
from lunaris_server.devices.models import Device
from lunaris_server.software import queries
from lunaris_server.software.models import DeviceSoftware
from lunaris_server.software.ranges import Bound, SoftwareSearch

BATCH = 1000
Rows = AsyncIterator[str]


def _utc(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def fleet_apps_csv(database: Database, search: SoftwareSearch) -> Rows:
    header = ["package_identifier", "name", "devices", "versions"]
    yield csv_lines([[*header, "devices_in_range"] if search.bounds else header])
    offset = 0
    while True:
        async with database.session() as session:
            rows, _ = await queries.fleet_apps(session, search=search, limit=BATCH, offset=offset)
        if not rows:
            return
        yield csv_lines(
            [
                [r.package_identifier, r.name, r.devices, r.versions]
                + ([r.matching] if search.bounds else [])
                for r in rows
            ]
        )
        offset += BATCH


async def app_devices_csv(
    database: Database, package: str, bounds: Sequence[Bound], scope: str | None = None
) -> Rows:
    """Seeks through the (package, version key, id) index: every batch costs the same."""
    header = ["device_id", "hostname", "version", "source", "instances", "first_seen_at"]
    yield csv_lines([[*header, "scope", "user"]])
    rows = DeviceSoftware
    conditions: list[Any] = [rows.package_identifier == package, Device.revoked_at.is_(None)]
    if bounds:
        conditions.append(queries.in_range(rows.version_key, bounds))
    if scope is not None:
        conditions.append(rows.scope == scope)
    after: tuple[str, int] | None = None
    while True:
        statement = (
            select(
                Device.id,
                Device.hostname,
                rows.version,
                rows.source,
                rows.instances,
                rows.first_seen_at,
                rows.version_key,
                rows.id,
                rows.scope,
                rows.user_account,
            )
            .join(rows, Device.id == rows.device_id)
            .where(*conditions)
            .order_by(rows.version_key, rows.id)
            .limit(BATCH)
        )
        if after is not None:
            statement = statement.where(tuple_(rows.version_key, rows.id) > after)
        async with database.session() as session:
            batch = (await session.execute(statement)).all()
        if not batch:
            return
        yield csv_lines([[*row[:5], _utc(row[5]), row[8], row[9]] for row in batch])
        after = (batch[-1][6], batch[-1][7])


async def device_software_csv(database: Database, device_id: str) -> Rows:
    """One device's apps (a few hundred rows: one read)."""
    yield csv_lines(
        [["package_identifier", "name", "version", "source", "instances", "first_seen_at"]]
    )
    async with database.session() as session:
        found = await queries.device_software(session, device_id=device_id)
    yield csv_lines(
        [
            [
                r.package_identifier,
                r.name,
                r.version,
                r.source,
                r.instances,
                _utc(r.first_seen_at),
            ]
            for r in found
        ]
    )

"""The device list as CSV, filtered and sorted like the page.

Read in batches and answered whole rather than streamed: a stream would hold the request's
database connection (SQLite has one) for as long as a slow client takes to download."""

from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.console.csv_export import csv_lines
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.queries import DeviceQuery

BATCH = 1000
HEADER = (
    "id",
    "hostname",
    "status",
    "updates",
    "os_version",
    "agent_version",
    "last_seen_at",
    "enrolled_at",
    "last_scan_at",
    "scan_error",
)


async def devices_csv(
    session: AsyncSession, *, query: DeviceQuery, liveness: Liveness, now: datetime
) -> str:
    chunks = [csv_lines([HEADER])]
    batch = replace(query, limit=BATCH, offset=0, after=None, before=None)
    while True:
        page = await device_queries.device_page(session, query=batch, liveness=liveness, now=now)
        rows = page.devices
        chunks.append(
            csv_lines(
                (
                    d.id,
                    d.hostname,
                    liveness.status(d, now).value,
                    d.updates_count,
                    d.os_version,
                    d.agent_version,
                    d.last_seen_at.isoformat(),
                    d.enrolled_at.isoformat(),
                    d.last_scan_at.isoformat() if d.last_scan_at else "",
                    d.scan_error_message or "",
                )
                for d in rows
            )
        )
        if len(rows) < BATCH:
            return "".join(chunks)
        # Each batch starts where the last one ended: no offset to skip again and again.
        batch = replace(batch, after=page.last)

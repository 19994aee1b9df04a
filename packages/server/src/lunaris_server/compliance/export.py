"""The device x package rows behind a compliance figure, as CSV (console/csv_export.py keeps
cells from starting a formula: hostnames and package names come from devices)."""

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.compliance.service import Figure, Scope, figure_rows
from lunaris_server.console.csv_export import csv_lines

HEADER = (
    "device_id",
    "hostname",
    "package_identifier",
    "name",
    "source",
    "installed_version",
    "available_version",
    "first_seen_at",
    "age_days",
    "overdue",
)


async def figure_csv(session: AsyncSession, scope: Scope, figure: Figure) -> str:
    chunks = [csv_lines([HEADER])]
    async for rows in figure_rows(session, scope, figure):
        chunks.append(
            csv_lines(
                (
                    r.device_id,
                    r.hostname,
                    r.package_identifier,
                    r.name,
                    r.source or "",
                    r.installed_version,
                    r.available_version,
                    r.first_seen_at.isoformat(),
                    (scope.now - r.first_seen_at).days,
                    "yes" if r.overdue else "no",
                )
                for r in rows
            )
        )
    return "".join(chunks)

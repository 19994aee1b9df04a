"""What the server holds of a device's inventory after the agent sent it: read from its
database (the server's own tables), the way the console reads it."""

from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI

from lunaris_protocol import InstalledItem
from lunaris_server.software import queries
from tests.support import app_state


@dataclass(frozen=True)
class Held:
    digest: str | None
    software: list[InstalledItem]
    error_code: str | None
    error_message: str | None
    reported_at: datetime | None


async def held(app: FastAPI, device_id: object) -> Held | None:
    """None before the device's first inventory reached the server."""
    async with app_state(app).database.session() as session:
        inventory = await queries.device_inventory(session, device_id=str(device_id))
        if inventory is None:
            return None
        rows = await queries.device_software(session, device_id=str(device_id))
    return Held(
        digest=inventory.digest,
        software=[
            InstalledItem(
                package_identifier=row.package_identifier,
                name=row.name,
                version=row.version,
                source=row.source,
                truncated=row.truncated,
            )
            for row in rows
            for _ in range(row.instances)
        ],
        error_code=inventory.error_code,
        error_message=inventory.error_message,
        reported_at=inventory.reported_at,
    )


def ids(items: list[InstalledItem] | None) -> list[tuple[str, str]]:
    """Order-free comparison of lists: (id, version) sorted."""
    return sorted((item.package_identifier, item.version) for item in items or [])

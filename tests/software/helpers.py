"""Inventory reports as an agent sends them, and what the database holds after them."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from lunaris_protocol import InstalledItem, list_digest
from lunaris_server.db import Database
from lunaris_server.devices.models import Device
from lunaris_server.software.models import (
    DeviceInventory,
    DeviceSoftware,
    SoftwareTitle,
    SoftwareVersion,
)
from lunaris_server.updates.models import UpdateEvent
from tests.support import RegisteredDevice, app_state


def installed(package: str, version: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"package_identifier": package, "name": name or package, "version": version, **extra}


def digest_of(rows: list[dict[str, Any]]) -> str:
    return list_digest([InstalledItem.model_validate(row) for row in rows])


async def send(
    client: httpx.AsyncClient, device: RegisteredDevice, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/api/agent/inventory", json=body, headers=device.headers)


async def report_list(
    client: httpx.AsyncClient, device: RegisteredDevice, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    response = await send(client, device, {"digest": digest_of(rows), "software": rows})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def report_digest(
    client: httpx.AsyncClient, device: RegisteredDevice, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    response = await send(client, device, {"digest": digest_of(rows)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(application: FastAPI, device_id: str) -> list[tuple[str, str | None, str, int]]:
    async with app_state(application).database.session() as session:
        rows = await session.scalars(
            select(DeviceSoftware)
            .where(DeviceSoftware.device_id == device_id)
            .order_by(DeviceSoftware.package_identifier, DeviceSoftware.version)
        )
        return [(r.package_identifier, r.source, r.version, r.instances) for r in rows]


async def software_events(application: FastAPI, device_id: str) -> list[tuple[str, ...]]:
    async with app_state(application).database.session() as session:
        rows = await session.scalars(
            select(UpdateEvent)
            .where(UpdateEvent.device_id == device_id, UpdateEvent.kind.like("software_%"))
            .order_by(UpdateEvent.id)
        )
        return [
            (e.kind, e.package_identifier, e.from_version or "", e.to_version or "") for e in rows
        ]


async def inventory_of(application: FastAPI, device_id: str) -> DeviceInventory | None:
    async with app_state(application).database.session() as session:
        return await session.get(DeviceInventory, device_id)


async def assert_counts_fresh(
    database: Database,
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The kept counters equal a fresh aggregation over the listed devices' rows."""
    listed = select(Device.id).where(Device.revoked_at.is_(None))
    async with database.session() as session:
        per_title = (
            select(
                DeviceSoftware.package_identifier,
                func.count(func.distinct(DeviceSoftware.device_id)),
            )
            .where(DeviceSoftware.device_id.in_(listed))
            .group_by(DeviceSoftware.package_identifier)
        )
        fresh_titles: dict[str, int] = dict((await session.execute(per_title)).all())
        pairs = (
            select(
                DeviceSoftware.package_identifier, DeviceSoftware.version, DeviceSoftware.device_id
            )
            .where(DeviceSoftware.device_id.in_(listed))
            .distinct()
            .subquery()
        )
        fresh_versions = {
            (package, version): count
            for package, version, count in await session.execute(
                select(pairs.c.package_identifier, pairs.c.version, func.count()).group_by(
                    pairs.c.package_identifier, pairs.c.version
                )
            )
        }
        kept = select(SoftwareTitle.package_identifier, SoftwareTitle.devices)
        kept_titles: dict[str, int] = dict((await session.execute(kept)).all())
        kept_versions = {
            (package, version): count
            for package, version, count in await session.execute(
                select(
                    SoftwareVersion.package_identifier,
                    SoftwareVersion.version,
                    SoftwareVersion.devices,
                )
            )
        }
    assert kept_titles == fresh_titles
    assert kept_versions == fresh_versions
    return kept_titles, kept_versions

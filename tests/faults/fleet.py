"""The fleet simulator (the real agent runtime over the real HTTP client, one virtual PC per
device) in the test's event loop, with a record of what each PC's winget showed, and what the
server ended up storing, read from its database.

A fault test needs to know, per device, the report the server must end up with. The simulated
PCs drift (updates come and go at every scan), so :meth:`Recorder.settle` fixes that: each PC's
next scan shows a list different from its last one, and every scan after that shows the same
list again. Settled right after a fault, each device's final list is one the server cannot
have yet: it is in the agent's spool, and must arrive once the fault is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from lunaris_agent.simulate.fleet import FleetStats, SimulationOptions, simulate
from lunaris_agent.simulate.inventory import DEFAULT_APPS, Inventory
from lunaris_agent.spool import REPORT_FILE
from lunaris_protocol import UpdateItem, UpdateReport
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import DeviceUpdate

T = TypeVar("T")

UpdateKey = tuple[str, str, str, str | None, str, bool, bool]
"""What the server stores of one update: id, installed, available, source, name, flags."""


def update_key(item: UpdateItem) -> UpdateKey:
    return (
        item.package_identifier,
        item.installed_version,
        item.available_version,
        item.source,
        item.name,
        item.explicit_targeting,
        item.truncated,
    )


def report_keys(report: UpdateReport) -> frozenset[UpdateKey]:
    return frozenset(update_key(item) for item in report.updates)


class RecordedInventory(Inventory):
    def __init__(self, device_id: UUID, recorder: Recorder, *, apps: int) -> None:
        super().__init__(device_id, apps=apps)
        self._recorder = recorder
        self.last: UpdateReport | None = None
        self.final: UpdateReport | None = None

    def scan(self) -> UpdateReport:
        if self.final is not None:
            return self.final  # settled: nothing changes on this PC any more
        report = super().scan()
        if self._recorder.settling:
            # A list the server cannot have been sent before the fault.
            while self.last is not None and report_keys(report) == report_keys(self.last):
                report = super().scan()
            self.final = report
        self.last = report
        return report


class Recorder:
    def __init__(self) -> None:
        self.inventories: dict[str, RecordedInventory] = {}
        self.settling = False

    def inventory(self, device_id: UUID, *, apps: int = DEFAULT_APPS) -> RecordedInventory:
        """Stands in for :class:`Inventory` in the simulator: the same PC, recorded."""
        inventory = RecordedInventory(device_id, self, apps=apps)
        self.inventories[str(device_id)] = inventory
        return inventory

    def settle(self) -> None:
        self.settling = True

    def finals(self) -> dict[str, UpdateReport]:
        return {
            device_id: inventory.final
            for device_id, inventory in self.inventories.items()
            if inventory.final is not None
        }


@dataclass
class RunningFleet:
    options: SimulationOptions
    recorder: Recorder
    task: asyncio.Task[FleetStats]

    def device_dirs(self) -> dict[str, Path]:
        """Device id -> the virtual agent's directory (config, spool)."""
        dirs = {}
        for config in self.options.state_dir.glob("agent-*/config.json"):
            dirs[json.loads(config.read_text())["device_id"]] = config.parent
        return dirs

    def spooled_reports(self) -> dict[str, UpdateReport]:
        """Device id -> the report waiting in its spool, for the devices that have one."""
        spooled = {}
        for device_id, directory in self.device_dirs().items():
            path = directory / "spool" / REPORT_FILE
            with contextlib.suppress(FileNotFoundError):
                spooled[device_id] = UpdateReport.model_validate_json(path.read_bytes())
        return spooled

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def start_fleet(recorder: Recorder, options: SimulationOptions) -> RunningFleet:
    task = asyncio.create_task(simulate(options), name="simulated-fleet")
    return RunningFleet(options, recorder, task)


@dataclass(frozen=True)
class StoredDevice:
    updates: frozenset[UpdateKey]
    last_seen_at: datetime
    last_scan_at: datetime | None


async def stored_devices(database_url: str) -> dict[str, StoredDevice]:
    """What the server has stored of every device, read from its database."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            devices = (
                await connection.execute(
                    select(Device.id, Device.last_seen_at, Device.last_scan_at)
                )
            ).all()
            rows = (
                await connection.execute(
                    select(
                        DeviceUpdate.device_id,
                        DeviceUpdate.package_identifier,
                        DeviceUpdate.installed_version,
                        DeviceUpdate.available_version,
                        DeviceUpdate.source,
                        DeviceUpdate.name,
                        DeviceUpdate.explicit_targeting,
                        DeviceUpdate.truncated,
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    updates: dict[str, set[UpdateKey]] = {device.id: set() for device in devices}
    for row in rows:
        updates[row.device_id].add(tuple(row)[1:])  # type: ignore[arg-type]
    return {
        device.id: StoredDevice(
            frozenset(updates[device.id]), device.last_seen_at, device.last_scan_at
        )
        for device in devices
    }


def mismatches(expected: dict[str, UpdateReport], stored: dict[str, StoredDevice]) -> list[str]:
    """The devices whose stored updates are not exactly their expected report's."""
    return sorted(
        device_id
        for device_id, report in expected.items()
        if device_id not in stored or stored[device_id].updates != report_keys(report)
    )


async def eventually(
    check: Callable[[], Awaitable[tuple[bool, str]]], what: str, *, timeout_s: float = 180.0
) -> None:
    """Polls ``check`` (which says whether it holds, and how things stand) until it holds.
    The limit only bounds a broken run; a healthy one goes on as soon as it holds."""
    deadline = time.monotonic() + timeout_s
    status = "not checked yet"
    while time.monotonic() < deadline:
        try:
            done, status = await check()
        except (httpx.HTTPError, OSError, DBAPIError) as error:
            done, status = False, f"{type(error).__name__}: {error}"
        if done:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {status}")


async def admin_get(base_url: str, token: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()


# -- the steps every fault test takes ------------------------------------------------------------


async def every_device_reported(database_url: str, count: int) -> dict[str, StoredDevice]:
    """Waits until each of ``count`` devices has sent a report; returns what is stored."""
    stored: dict[str, StoredDevice] = {}

    async def check() -> tuple[bool, str]:
        nonlocal stored
        stored = await stored_devices(database_url)
        reported = sum(device.last_scan_at is not None for device in stored.values())
        return reported == count, f"{reported} of {count} devices reported"

    await eventually(check, "every device's first report")
    return stored


async def finals_spooled(fleet: RunningFleet, count: int) -> dict[str, UpdateReport]:
    """Waits until every device has scanned since :meth:`Recorder.settle` and keeps that
    report in its spool (the server cannot take it); returns the reports."""

    async def check() -> tuple[bool, str]:
        finals = fleet.recorder.finals()
        spooled = fleet.spooled_reports()
        kept = sum(spooled.get(device_id) == report for device_id, report in finals.items())
        return kept == count, (
            f"{len(finals)} of {count} devices scanned since the fault; "
            f"{kept} of them keep that report in their spool"
        )

    await eventually(check, "every device to spool a report made during the fault")
    return fleet.recorder.finals()


async def finals_stored(database_url: str, finals: dict[str, UpdateReport]) -> None:
    """Waits until the server stores, for every device, exactly its final report."""

    async def check() -> tuple[bool, str]:
        wrong = mismatches(finals, await stored_devices(database_url))
        return not wrong, f"{len(finals) - len(wrong)} of {len(finals)} final reports stored"

    await eventually(check, "every report made during the fault to arrive")


async def heartbeats_since(database_url: str, since: datetime, count: int) -> None:
    """Waits until each of ``count`` devices has been seen after ``since``."""

    async def check() -> tuple[bool, str]:
        stored = await stored_devices(database_url)
        seen = sum(device.last_seen_at > since for device in stored.values())
        return seen == count, f"{seen} of {count} devices heartbeated since the fault ended"

    await eventually(check, "heartbeats from every device after the fault")


async def agent_sockets(base_url: str, api_token: str, count: int) -> str:
    """Waits until the server at ``base_url`` holds ``count`` agent push sockets; returns the
    id of the server process."""
    process_id = ""

    async def check() -> tuple[bool, str]:
        nonlocal process_id
        stats = await admin_get(base_url, api_token, "/api/realtime/stats")
        process_id = stats["process_id"]
        return stats["agent_sockets"] == count, f"{stats['agent_sockets']} agent sockets open"

    await eventually(check, f"{count} agent push sockets")
    return process_id

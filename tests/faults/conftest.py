"""Fixtures of the fault tests: a PostgreSQL server of the test's own (to stop and restart),
real server processes, and the simulated fleet with a record of what each PC showed."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lunaris_agent.simulate import fleet as fleet_module
from lunaris_agent.simulate import inventory as inventory_module
from lunaris_agent.simulate.fleet import SimulationOptions
from lunaris_server.db.migrate import upgrade_to_head
from tests.faults.fleet import Recorder, RunningFleet, start_fleet
from tests.faults.postgres import PrivatePostgres, binaries_dir, server_user
from tests.support import LiveServer, start_live_server


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A started, migrated PostgreSQL of this test's own."""
    bin_dir = binaries_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and server_user() is None:
        pytest.skip("running as root, and there is no postgres account to run PostgreSQL as")
    server = await asyncio.to_thread(PrivatePostgres.create, bin_dir)
    try:
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(upgrade_to_head, server.url)
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Starts the real server (``port`` given: on the address of one that went away)."""
    started: list[LiveServer] = []

    def start(database_url: str, *, port: int | None = None, **extra_env: str) -> LiveServer:
        server = start_live_server(
            database_url=database_url,
            data_dir=tmp_path / f"server-{len(started)}",
            port=port,
            **extra_env,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The simulated PCs, recorded; without scan errors, so every report is a list."""
    recorded = Recorder()
    monkeypatch.setattr(fleet_module, "Inventory", recorded.inventory)
    monkeypatch.setattr(inventory_module, "SCAN_ERROR_RATE", 0.0)
    return recorded


@pytest.fixture
async def fleets(recorder: Recorder, tmp_path: Path) -> AsyncIterator[Callable[..., RunningFleet]]:
    running: list[RunningFleet] = []

    def start(*, api_url: str, enrollment_secret: str, **options: Any) -> RunningFleet:
        fleet = start_fleet(
            recorder,
            SimulationOptions(
                api_url=api_url,
                enrollment_secret=enrollment_secret,
                state_dir=tmp_path / "fleet",
                **options,
            ),
        )
        running.append(fleet)
        return fleet

    yield start
    for fleet in running:
        await fleet.stop()

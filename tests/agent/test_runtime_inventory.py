"""The agent's software inventory against the real app (in-process): digest first, the list
when the server asks for it, the spool across an outage and a restart, after installs, at the
interval the server asks for. What the server holds is read from its database; the lists
come from an inventory the test controls."""

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lunaris_agent import config as config_file
from lunaris_agent.client import AgentClient
from lunaris_agent.config import AgentConfig
from lunaris_agent.runtime import inventory as inventory_module
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.runtime.exits import ExitCode
from lunaris_agent.runtime.inventory import InventoryReporter
from lunaris_agent.spool import Spool
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_protocol import (
    InstalledItem,
    InventoryReport,
    InventoryReportResponse,
    RunUpdatesCommand,
    ScanError,
    UpdateReport,
    list_digest,
)
from lunaris_server.agent_api.routes import router as agent_routes
from lunaris_server.core.settings import Settings
from tests.agent.inventory_held import held, ids
from tests.agent.test_runtime import API, FACTS, Scans, new_config
from tests.support import create_secret, free_port

INTERVAL_S = 3600


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The server asks for an inventory every hour, not the default six."""
    return settings.model_copy(update={"inventory_interval_s": INTERVAL_S})


def installed(*identifiers: str, version: str = "1.0") -> InventoryReport:
    software = [
        InstalledItem(package_identifier=identifier, name=identifier, version=version)
        for identifier in identifiers
    ]
    return InventoryReport(digest=list_digest(software), software=software)


class Listings:
    """An inventory that returns the lists the test queues, then repeats the last one."""

    def __init__(self, *reports: InventoryReport) -> None:
        self.reports = list(reports)
        self.count = 0

    async def __call__(self) -> InventoryReport:
        self.count += 1
        return self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]


class RecordingClient(AgentClient):
    """The real client, keeping every inventory body it sends and what came back."""

    def __init__(
        self,
        api_url: str = API,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(api_url, transport=transport, timeout_s=timeout_s)
        self.sent: list[InventoryReport] = []
        self.answers: list[InventoryReportResponse] = []

    async def inventory(self, token: str, report: InventoryReport) -> InventoryReportResponse:
        self.sent.append(report)
        answer = await super().inventory(token, report)
        self.answers.append(answer)
        return answer

    def kinds(self) -> list[str]:
        """What each body was: ``digest``, ``list`` or ``error``; then forgets them."""
        kinds = [
            "error" if body.scan_error else "list" if body.software is not None else "digest"
            for body in self.sent
        ]
        self.sent.clear()
        self.answers.clear()
        return kinds


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[RecordingClient]:
    async with RecordingClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
async def unreachable() -> AsyncIterator[RecordingClient]:
    async with RecordingClient(f"http://127.0.0.1:{free_port()}/api", timeout_s=2) as client:
        yield client


def agent(config: AgentConfig, client: AgentClient, listings: Listings, **kwargs: Any) -> Agent:
    return Agent(
        config,
        client,
        scanner=Scans(UpdateReport()),
        facts=FACTS,
        rng=random.Random(7),
        inventory=listings,
        **kwargs,
    )


async def registered(app: FastAPI, tmp_path: Path) -> AgentConfig:
    config = new_config(tmp_path, await create_secret(app))
    async with AgentClient(API, transport=httpx.ASGITransport(app=app)) as client:
        plain = Agent(config, client, scanner=Scans(UpdateReport()), facts=FACTS)
        assert await plain.once() == ExitCode.OK  # without an inventory: nothing sent
    return config_file.load(config.path)


async def test_the_digest_goes_alone_then_the_list_the_server_asks_for(app, server, tmp_path):
    config = await registered(app, tmp_path)
    assert await held(app, config.device_id) is None
    first = installed("Git.Git", "Mozilla.Firefox")

    assert await agent(config, server, Listings(first)).once() == ExitCode.OK
    assert [body.software for body in server.sent] == [None, first.software]
    assert server.sent[0].digest == first.digest
    assert [answer.full_list_needed for answer in server.answers] == [True, False]
    assert server.answers[1].added == 2
    stored = await held(app, config.device_id)
    assert stored is not None
    assert ids(stored.software) == ids(first.software)
    assert stored.digest == first.digest
    assert Spool(config.spool_dir).pending_inventory() is None
    server.kinds()

    # A restart, nothing changed: the digest alone, which the server holds.
    restarted = agent(config_file.load(config.path), server, Listings(first))
    assert await restarted.once() == ExitCode.OK
    assert [answer.full_list_needed for answer in server.answers] == [False]
    assert server.kinds() == ["digest"]


async def test_a_changed_list_goes_whole_at_once_until_a_restart(app, server, tmp_path):
    config = await registered(app, tmp_path)
    listings = Listings(installed("A.A"), installed("A.A", "B.B"), installed("A.A", "B.B"))
    device = agent(config, server, listings)
    await device.once()
    assert server.kinds() == ["digest", "list"]
    await device.once()  # the server cannot hold the new digest: no question first
    assert server.kinds() == ["list"]
    await device.once()
    assert server.kinds() == ["digest"]
    assert device.inventory is not None
    assert device.inventory.accepted_digest == installed("A.A", "B.B").digest

    # Restarted, the agent does not know what the server holds: it asks first again.
    restarted = agent(config_file.load(config.path), server, Listings(installed("C.C")))
    await restarted.once()
    assert server.kinds() == ["digest", "list"]
    stored = await held(app, config.device_id)
    assert stored is not None
    assert ids(stored.software) == ids(installed("C.C").software)


async def test_an_inventory_made_during_an_outage_arrives_after_a_restart(
    app, server, unreachable, tmp_path
):
    config = await registered(app, tmp_path)
    offline = agent(config, unreachable, Listings(installed("A.A")))
    assert await offline.once() == ExitCode.FAILED
    assert Spool(config.spool_dir).pending_inventory() == installed("A.A")
    assert await held(app, config.device_id) is None

    # The server back and the agent restarted: the spooled one, then the new one (whose
    # digest the server cannot hold).
    back = agent(config_file.load(config.path), server, Listings(installed("A.A", "B.B")))
    assert await back.once() == ExitCode.OK
    assert server.kinds() == ["digest", "list", "list"]
    stored = await held(app, config.device_id)
    assert stored is not None
    assert ids(stored.software) == ids(installed("A.A", "B.B").software)
    assert Spool(config.spool_dir).pending_inventory() is None


async def test_a_failed_listing_is_sent_as_it_is_and_the_list_kept(app, server, tmp_path):
    config = await registered(app, tmp_path)
    failed = InventoryReport(scan_error=ScanError(code="0x8A15000F", message="source missing"))
    device = agent(config, server, Listings(installed("A.A"), failed, installed("A.A")))
    await device.once()
    await device.once()
    assert server.sent[-1] == failed
    assert server.kinds() == ["digest", "list", "error"]
    stored = await held(app, config.device_id)
    assert stored is not None
    assert (stored.error_code, stored.error_message) == ("0x8A15000F", "source missing")
    assert ids(stored.software) == ids(installed("A.A").software)
    await device.once()  # the list the server kept: the digest alone
    assert server.kinds() == ["digest"]


async def test_a_refused_inventory_is_dropped_not_resent_forever(app, server, tmp_path):
    config = await registered(app, tmp_path)
    # More than the server takes in one body (its max_body_bytes): refused with a 413.
    big = installed(*(f"Vendor.App{n:04d}.{'x' * 230}" for n in range(4500)))
    device = agent(config, server, Listings(big, installed("A.A")))
    assert await device.once() == ExitCode.OK
    assert server.kinds() == ["digest", "list"]  # the list refused
    assert Spool(config.spool_dir).pending_inventory() is None
    assert await held(app, config.device_id) is None
    assert await device.once() == ExitCode.OK
    # The next one, not the refused one again (and asked first: nothing was accepted).
    assert server.kinds() == ["digest", "list"]
    stored = await held(app, config.device_id)
    assert stored is not None
    assert ids(stored.software) == ids(installed("A.A").software)


async def test_a_server_without_inventories_drops_them_with_a_warning(
    app, server, tmp_path, caplog, monkeypatch
):
    # A server built before the inventory: the same agent API without its route (taken out
    # before the app's first request, which settles its routes).
    kept = [r for r in agent_routes.routes if getattr(r, "path", "") != "/api/agent/inventory"]
    monkeypatch.setattr(agent_routes, "routes", kept)
    config = await registered(app, tmp_path)
    caplog.set_level(logging.WARNING, logger="lunaris_agent.runtime.inventory")
    assert await agent(config, server, Listings(installed("A.A"))).once() == ExitCode.OK
    assert "takes no software inventory" in caplog.text
    assert Spool(config.spool_dir).pending_inventory() is None


async def test_a_remote_action_sends_the_inventory_it_changed(app, server, tmp_path):
    config = await registered(app, tmp_path)
    listings = Listings(installed("Git.Git"), installed("Git.Git", version="2.0"))

    async def install(package: str, version: str | None) -> InstallOutcome:
        return InstallOutcome("success", package, None, None)

    device = agent(config, server, listings, install=install)
    await device.once()
    assert server.kinds() == ["digest", "list"]
    command = RunUpdatesCommand(
        command_id=uuid.uuid4(),
        packages=["Git.Git"],
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert device.commands.offer(command)
    assert await device.commands.run_queued() == 1
    assert listings.count == 2
    assert server.kinds() == ["list"]
    stored = await held(app, config.device_id)
    assert stored is not None
    assert ids(stored.software) == [("Git.Git", "2.0")]


async def test_the_interval_is_the_servers_and_the_first_comes_soon_after_start(
    app, server, tmp_path
):
    config = await registered(app, tmp_path)
    assert config.inventory_interval_s == INTERVAL_S  # the registration's answer
    config = replace(config, inventory_interval_s=60)  # an older answer
    config_file.save(config)
    listings = Listings(installed("A.A"))
    device = agent(config, server, listings, push=False)
    stop = asyncio.Event()
    running = asyncio.create_task(device.run(stop))
    for _ in range(200):
        if await held(app, config.device_id) is not None:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(running, 5) == ExitCode.OK
    assert listings.count == 1  # the next one is an hour away
    assert server.kinds() == ["digest", "list"]
    assert config_file.load(config.path).inventory_interval_s == INTERVAL_S  # the heartbeat's


async def test_the_simulators_interval_overrides_the_servers(app, server, tmp_path):
    config = await registered(app, tmp_path)
    listings = Listings(installed("A.A"))
    device = agent(config, server, listings, push=False, inventory_interval_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(device.run(stop))
    for _ in range(200):
        if listings.count >= 4 and len(server.sent) >= 4:
            break
        await asyncio.sleep(0.02)
    stop.set()
    assert await asyncio.wait_for(running, 5) == ExitCode.OK
    kinds = server.kinds()
    assert kinds[:2] == ["digest", "list"]
    assert set(kinds[2:]) == {"digest"}  # a steady PC: 64 characters each time
    stored = await held(app, config.device_id)
    assert stored is not None
    assert stored.digest == installed("A.A").digest


async def test_an_interval_the_server_shortened_applies_without_waiting_out_the_old_one(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(inventory_module, "RECHECK_S", 0.01)
    listings = Listings(installed("A.A"))
    every = [3600.0]
    sent: list[InventoryReport] = []

    async def post(body: InventoryReport) -> InventoryReportResponse:
        sent.append(body)
        return InventoryReportResponse()

    reporter = InventoryReporter(
        listings,
        spool=Spool(tmp_path),
        post=post,
        listing=asyncio.Lock(),
        every=lambda: every[0],
        jittered=lambda seconds: seconds,
    )
    running = asyncio.create_task(reporter.run_forever(reporter.send_pending))
    try:
        await asyncio.sleep(0.1)
        assert listings.count == 1  # at start; the next in an hour
        every[0] = 0.05  # the server asks for more
        for _ in range(100):
            if listings.count >= 3:
                break
            await asyncio.sleep(0.02)
        assert listings.count >= 3
    finally:
        running.cancel()
    assert all(body.software is None for body in sent)  # the digest, which the server held

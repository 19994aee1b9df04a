"""The live console in a real browser when things go wrong: the server goes away and comes
back, a console falls behind and is told to resync, a device is revoked while shown."""

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, WebSocketRoute, expect
from sqlalchemy import update

from lunaris_server.db import Database
from lunaris_server.db.engine import asyncpg_dsn
from lunaris_server.devices.models import Device
from tests.console.helpers import Agent
from tests.console.test_browser import insert_devices, log_in, new_page
from tests.databases import POSTGRES_URL
from tests.support import (
    LiveServer,
    Seeded,
    free_port,
    start_live_server,
    update_row,
)

pytestmark = pytest.mark.e2e

LIVE_WITHIN_MS = 5000
RECONNECTED_WITHIN_MS = 30_000
"""The page retries with backoff (up to 30 s between tries) while the server is away."""
UPDATES = {
    "updates": [
        update_row("Git.Git", "2.46.2", "2.47.1", name="Git"),
        update_row("7zip.7zip", "23.01", "24.08", name="7-Zip"),
    ]
}


@pytest.fixture
def server_at(database_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Starts the server on one fixed port and data directory, so that a second call is the
    same server restarted. Whatever is still running is stopped at the end."""
    port = free_port()
    started: list[LiveServer] = []

    def start(**extra_env: str) -> LiveServer:
        server = start_live_server(
            database_url=database_url, data_dir=tmp_path / "server", port=port, **extra_env
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def enroll(server: LiveServer, seeded: Seeded, *hostnames: str) -> list[Agent]:
    agents = [Agent(server.base_url, seeded.enrollment_secret, name) for name in hostnames]
    for agent in agents:
        await agent.register()
        await agent.report({"updates": []})
    return agents


async def change_device(database_url: str, device_id: str, **values: Any) -> None:
    """Changes a device row behind the server's back: no event announces it."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(update(Device).where(Device.id == device_id).values(**values))
            await session.commit()
    finally:
        await database.dispose()


async def realtime_stats(server: LiveServer, seeded: Seeded) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        stats: dict[str, Any] = (await http.get("/api/realtime/stats")).json()
    return stats


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def mark_page(page: Page) -> None:
    """A mark that a reload would wipe: the page must catch up without one."""
    await page.evaluate("window.lunarisTestMark = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.lunarisTestMark === true"), "the page was reloaded"


async def test_the_page_catches_up_when_the_server_comes_back(
    server_at, seeded, database_url, chromium
):
    server = server_at()
    away, staying = await enroll(server, seeded, "AWAY-PC-01", "STAYING-PC-02")
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/devices")
    status = page.locator("#live-status")
    await expect(status).to_have_attribute("data-state", "live")
    await mark_page(page)

    server.stop()
    await expect(status).to_have_attribute("data-state", "offline")
    # While the server is away the fleet changes; nothing will announce these changes.
    await change_device(database_url, away.device_id, hostname="RENAMED-WHILE-AWAY")
    await insert_devices(database_url, ["ENROLLED-WHILE-AWAY"])
    server = server_at()  # the same address again

    await expect(status).to_have_attribute("data-state", "live", timeout=RECONNECTED_WITHIN_MS)
    table = page.locator("#devices-table")
    await expect(page.locator(f"#device-{away.device_id}")).to_contain_text(
        "RENAMED-WHILE-AWAY", timeout=LIVE_WITHIN_MS
    )
    await expect(table).to_contain_text("ENROLLED-WHILE-AWAY")
    await expect(table.locator("[data-total]")).to_have_attribute("data-total", "3")
    # The new socket carries events again.
    await staying.report(UPDATES)
    await expect(page.locator(f"#device-{staying.device_id} [data-updates]")).to_have_attribute(
        "data-updates", "2", timeout=LIVE_WITHIN_MS
    )
    await assert_not_reloaded(page)


async def force_resync(server: LiveServer, database_url: str, agent: Agent) -> None:
    """Makes the server tell its consoles to resync, from outside, as production would.

    SQLite (in-process bus): one commit announces two events to consoles whose queue holds
    one, so the second overflows it. PostgreSQL: the bus loses its listening connection (as
    when PostgreSQL restarts) and, once back, every console resyncs, since announcements
    made meanwhile were lost.
    """
    if POSTGRES_URL is None:
        # A report from a device announced offline: "back online" and "updates changed".
        await change_device(database_url, agent.device_id, announced_status="offline")
        await agent.report(UPDATES)
        return
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        ended = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    assert len(ended) == 1, ended  # the one server's bus listener


async def test_a_console_told_to_resync_reloads_every_fragment(
    server_at, seeded, database_url, chromium
):
    server = server_at(LUNARIS_CONSOLE_QUEUE_SIZE="1")
    busy, quiet = await enroll(server, seeded, "BUSY-PC-01", "QUIET-PC-02")
    page = await new_page(chromium, server)
    received: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framereceived", lambda payload: received.append(json.loads(payload)["type"])
        ),
    )
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/devices")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await mark_page(page)
    # Only a refresh of the whole list can show this: no event names it.
    await change_device(database_url, quiet.device_id, hostname="RENAMED-QUIETLY")

    await force_resync(server, database_url, busy)

    await wait_for(lambda: "RESYNC" in received, "a RESYNC message")
    await expect(page.locator(f"#device-{quiet.device_id}")).to_contain_text(
        "RENAMED-QUIETLY", timeout=LIVE_WITHIN_MS
    )
    if POSTGRES_URL is not None:  # nothing reported yet: now the bus is back, events flow
        await busy.report(UPDATES)
    await expect(page.locator(f"#device-{busy.device_id} [data-updates]")).to_have_attribute(
        "data-updates", "2", timeout=LIVE_WITHIN_MS
    )
    stats = await realtime_stats(server, seeded)
    assert stats["console_resyncs"] >= 1
    assert stats["console_drops"] == 0  # told to resync, not disconnected
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await assert_not_reloaded(page)


async def test_a_revoked_device_leaves_the_console_live(server_at, seeded, chromium):
    server = server_at()
    revoked, kept = await enroll(server, seeded, "LEAVING-PC-01", "KEPT-PC-02")
    await revoked.report(UPDATES)
    devices = await new_page(chromium, server)
    await log_in(devices, seeded.username, seeded.password)
    dashboard = await devices.context.new_page()
    detail = await devices.context.new_page()
    await dashboard.goto("/")
    await detail.goto(f"/devices/{revoked.device_id}")
    await devices.goto("/devices")
    for page in (devices, dashboard, detail):
        await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        await mark_page(page)
    await expect(dashboard.locator("#recent")).to_contain_text("LEAVING-PC-01")
    row = devices.locator(f"#device-{revoked.device_id}")
    await expect(row).to_be_visible()

    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        response = await http.post(f"/api/devices/{revoked.device_id}/revoke")
    assert response.status_code == 200, response.text

    await expect(row).to_have_count(0, timeout=LIVE_WITHIN_MS)
    table = devices.locator("#devices-table")
    await expect(table.locator("[data-total]")).to_have_attribute(
        "data-total", "1", timeout=LIVE_WITHIN_MS
    )
    await expect(devices.locator(f"#device-{kept.device_id}")).to_be_visible()
    await expect(dashboard.locator("#recent")).not_to_contain_text(
        "LEAVING-PC-01", timeout=LIVE_WITHIN_MS
    )
    await expect(dashboard.locator('[data-stat="devices"] .stat-value')).to_have_attribute(
        "data-value", "1", timeout=LIVE_WITHIN_MS
    )
    await expect(detail.locator("#device-overview")).to_contain_text(
        "This device is gone", timeout=LIVE_WITHIN_MS
    )
    await expect(detail.locator("#device-updates")).to_be_hidden()
    await expect(detail.locator("#device-history")).to_be_hidden()

    # Enrolled again, it comes back on every page.
    await revoked.register()
    await expect(row).to_contain_text("LEAVING-PC-01", timeout=LIVE_WITHIN_MS)
    await expect(detail.locator("#device-overview h1")).to_contain_text(
        "LEAVING-PC-01", timeout=LIVE_WITHIN_MS
    )
    await expect(detail.locator("#device-updates")).to_be_visible()
    await expect(detail.locator("#device-updates tbody tr")).to_have_count(2)
    await expect(dashboard.locator("#recent")).to_contain_text(
        "LEAVING-PC-01", timeout=LIVE_WITHIN_MS
    )
    for page in (devices, dashboard, detail):
        await assert_not_reloaded(page)


async def test_a_change_before_the_pages_socket_opens_is_shown(server_at, seeded, chromium):
    server = server_at()
    (late,) = await enroll(server, seeded, "LATE-PC-01")
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    # The page's socket is held back until the device has changed: the change happens
    # after the page was rendered and before its socket opened.
    changed = asyncio.Event()
    opened: list[str] = []

    async def hold_back(socket: WebSocketRoute) -> None:
        opened.append(socket.url)
        await changed.wait()
        socket.connect_to_server()

    await page.route_web_socket("**/ws/console*", hold_back)
    await page.goto("/devices")
    await wait_for(lambda: bool(opened), "the page's socket")
    await mark_page(page)
    await late.report(UPDATES)
    changed.set()

    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await expect(page.locator(f"#device-{late.device_id} [data-updates]")).to_have_attribute(
        "data-updates", "2", timeout=LIVE_WITHIN_MS
    )
    assert "?since=" in opened[0]
    await assert_not_reloaded(page)

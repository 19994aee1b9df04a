"""Deployments in a real browser (headless Chromium) against the real server process: an admin
ticks devices in the device list, runs updates on them, and watches the deployment's summary
change live as the devices' agents (speaking the real agent API) report progress; then
retries the one that failed, and sees a waiting device go offline. The list of deployments
follows along in another tab. Nothing reloads the pages."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.commands.test_browser import log_in, new_page, watch_errors
from tests.console.helpers import Agent
from tests.support import LiveServer, Seeded, update_row

pytestmark = pytest.mark.e2e

LIVE_MS = 15_000
"""An event, then a fragment's refresh: well under a second, but others share the machine."""


class FakeAgent:
    """A device's agent as the server sees it: heartbeats that fetch its commands, and the
    progress steps of each."""

    def __init__(self, agent: Agent, http: httpx.AsyncClient) -> None:
        self.agent = agent
        self.http = http
        self.sequence: dict[str, int] = {}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent.token}"}

    async def commands(self) -> list[str]:
        answer = await self.http.post("/api/agent/heartbeat", json={}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return [c["command_id"] for c in answer.json()["commands"]]

    async def step(self, command_id: str, **step: Any) -> None:
        self.sequence[command_id] = self.sequence.get(command_id, 0) + 1
        answer = await self.http.post(
            f"/api/agent/commands/{command_id}/progress",
            json={"sequence": self.sequence[command_id], **step},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text

    async def install(self, command_id: str, package: str, succeeded: bool) -> None:
        await self.step(command_id, status="running", package_started=package)
        result = {
            "package_identifier": package,
            "outcome": "success" if succeeded else "installer_failed",
            "succeeded": succeeded,
            "duration_s": 3.0,
        }
        await self.step(command_id, status="running", result=result)


@contextlib.asynccontextmanager
async def heartbeating(agents: list[FakeAgent]) -> AsyncIterator[set[FakeAgent]]:
    """Heartbeats of these agents every half second (the server expects one a second), so
    their devices stay online; an agent taken out of the set yielded goes quiet."""
    alive = set(agents)

    async def beat() -> None:
        while True:
            for one in list(alive):
                await one.http.post("/api/agent/heartbeat", json={}, headers=one.headers)
            await asyncio.sleep(0.5)

    task = asyncio.create_task(beat())
    try:
        yield alive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_run_updates_on_a_selection_and_watch_the_summary_live(
    server: LiveServer,
    seeded: Seeded,
    chromium: Any,
):
    hosts = {"PC-BER-1": ["Git.Git", "7zip.7zip"], "PC-BER-2": ["Git.Git", "7zip.7zip"]}
    hosts["PC-BER-3"] = ["Git.Git"]
    hosts["PC-PAR-1"] = ["Git.Git"]  # not ticked
    agents = {name: Agent(server.base_url, seeded.enrollment_secret, name) for name in hosts}
    for name, one in agents.items():
        await one.register()
        await one.report({"updates": [update_row(p) for p in hosts[name]]})
    async with (
        httpx.AsyncClient(base_url=server.base_url) as http,
        heartbeating([FakeAgent(one, http) for one in agents.values()]) as alive,
    ):
        fakes = {one.agent.hostname: one for one in alive}
        await run_and_watch(server, seeded, chromium, fakes, alive)


async def run_and_watch(
    server: LiveServer,
    seeded: Seeded,
    chromium: Any,
    fakes: dict[str, FakeAgent],
    alive: set[FakeAgent],
) -> None:
    first, second, third = (fakes[f"PC-BER-{n}"] for n in (1, 2, 3))
    page = await new_page(chromium, server)
    errors = watch_errors(page)
    await log_in(page, seeded)
    listing = await page.context.new_page()
    await listing.goto("/deployments")
    await expect(listing.locator("#deployments-table")).to_contain_text("No deployments yet")
    await expect(listing.locator("#live-status")).to_have_attribute("data-state", "live")

    await page.goto("/devices")
    for one in (first, second, third):
        await page.check(f'input[name=device_id][value="{one.agent.device_id}"]')
    await page.click("#bulk-run-updates")
    await expect(page.locator("h1")).to_have_text("Run updates on 3 devices?")
    await page.click("#confirm-run-updates")
    await expect(page).to_have_url(re.compile(r"/deployments/[0-9a-f-]{36}$"))
    deployment_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#deployment-title")).to_have_text(
        "Every waiting update on 3 selected devices"
    )
    text = page.locator("#deployment-text")
    await expect(text).to_have_text("0 of 3 succeeded, 3 waiting")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    rows = page.locator("#deployment-commands tbody tr")
    await expect(rows).to_have_count(3)
    await page.evaluate("window.lunarisNotReloaded = true")
    # The other tab's list shows the new deployment without a reload.
    row = listing.locator(f"#deployment-{deployment_id}")
    await expect(row).to_contain_text("0 of 3 succeeded, 3 waiting", timeout=LIVE_MS)
    await listing.evaluate("window.lunarisNotReloaded = true")

    (one,) = await first.commands()
    (two,) = await second.commands()
    (three,) = await third.commands()
    await first.step(one, status="running", package_started="Git.Git")
    await expect(text).to_have_text("0 of 3 succeeded, 1 running, 2 waiting", timeout=LIVE_MS)

    await first.install(one, "Git.Git", True)
    await first.install(one, "7zip.7zip", True)
    await first.step(one, status="succeeded")
    await expect(text).to_have_text("1 of 3 succeeded, 2 waiting", timeout=LIVE_MS)
    await expect(row).to_contain_text("1 of 3 succeeded, 2 waiting", timeout=LIVE_MS)

    # Git installs, 7zip does not: partly succeeded, and retryable.
    await second.install(two, "Git.Git", True)
    await second.install(two, "7zip.7zip", False)
    await second.step(two, status="failed")
    await third.install(three, "Git.Git", True)
    await third.step(three, status="succeeded")
    await expect(text).to_have_text("2 of 3 succeeded, 1 partly succeeded", timeout=LIVE_MS)
    await expect(page.locator('#deployment-summary [data-status="partial"]')).to_be_visible()
    await expect(page.locator(f"#command-{two} [data-status]").first).to_have_attribute(
        "data-status", "partial", timeout=LIVE_MS
    )

    asked: list[str] = []

    async def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await page.click("#retry-failed")
    await expect(text).to_have_text("2 of 3 succeeded, 1 waiting", timeout=LIVE_MS)
    assert asked == ["Retry on the 1 device whose update failed or expired?"]
    # The retry's command joins the table live: 7zip only, for the device it failed on.
    await expect(rows).to_have_count(4, timeout=LIVE_MS)
    (retried,) = await second.commands()
    await expect(page.locator(f"#command-{retried}")).to_contain_text("7zip.7zip")

    # Its agent goes quiet (the server expects a heartbeat a second, and counts a device
    # offline after three missed ones): the summary says so.
    alive.discard(second)
    await expect(text).to_have_text(
        re.compile(r"^2 of 3 succeeded, 1 waiting \(offline since \d\d:\d\d UTC\)$"),
        timeout=LIVE_MS,
    )
    # It comes back and installs it.
    alive.add(second)
    await second.install(retried, "7zip.7zip", True)
    await second.step(retried, status="succeeded")
    await expect(text).to_have_text("3 of 3 succeeded", timeout=LIVE_MS)
    await expect(page.locator("#deployment-summary")).to_have_attribute("data-finished", "yes")
    await expect(row).to_contain_text("3 of 3 succeeded", timeout=LIVE_MS)

    assert await page.evaluate("window.lunarisNotReloaded") is True
    assert await listing.evaluate("window.lunarisNotReloaded") is True
    assert errors == []

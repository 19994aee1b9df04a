"""Remote actions in a real browser (headless Chromium) against the real server process and a
real agent process: an admin clicks "Update all" on a device's page and watches the command
go from queued to running to succeeded, package by package, and the device's updates shrink,
without reloading the page; the commands list follows along in another tab."""

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.commands.test_agent_process import configure
from tests.console.helpers import Agent, add_user_to
from tests.support import LiveServer, Seeded, update_row
from tests.winget_stand_in import STAND_IN, Winget, package

pytestmark = pytest.mark.e2e

AGENT_MS = 30_000
"""An agent process starts, connects and installs: more than an in-page refresh."""

GATE = """\
import runpy
import sys
import time
from pathlib import Path

here = Path(__file__).parent
if "--id" in sys.argv:  # an install: held until the test opens the gate (listing is not)
    deadline = time.monotonic() + 120
    while not (here / "gate-open").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
runpy.run_path(str(here / "stand_in.py"), run_name="__main__")
"""


class GatedWinget(Winget):
    """The winget stand-in whose installs wait until ``open_gate``: the test sees the command
    running, on a package, for as long as it needs to, whatever the machine's speed."""

    def __init__(self, directory: Path, packages: list[dict[str, str]]) -> None:
        super().__init__(directory, packages)
        (directory / "stand_in.py").write_text(STAND_IN, encoding="utf-8")
        self.path = directory / "gated.py"
        self.path.write_text(GATE, encoding="utf-8")
        self.gate = directory / "gate-open"

    def open_gate(self) -> None:
        self.gate.touch()


async def new_page(chromium: Any, server: LiveServer) -> Page:
    context = await chromium.new_context(
        base_url=server.base_url, viewport={"width": 1280, "height": 900}
    )
    page: Page = await context.new_page()
    return page


async def log_in(page: Page, seeded: Seeded) -> None:
    await page.goto("/login")
    await page.fill("input[name=username]", seeded.username)
    await page.fill("input[name=password]", seeded.password)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Dashboard")


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def api(server: LiveServer, seeded: Seeded, path: str) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def until(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_update_all_runs_on_a_real_agent_and_the_page_follows_it_live(
    server,
    seeded,
    agent,
    tmp_path,
    chromium,
):
    winget = GatedWinget(
        tmp_path / "winget",
        [package("Git.Git"), package("Vendor.NeedsReboot", "reboot"), package("Mozilla.Firefox")],
    )
    device_id = configure(agent, server, seeded, winget)
    # Registers and reports once, then stops: the command waits, queued, until it runs.
    once = await asyncio.to_thread(agent.cli, "once")
    assert once.returncode == 0, once.stderr

    page = await new_page(chromium, server)
    errors = watch_errors(page)
    await log_in(page, seeded)
    commands_tab = await page.context.new_page()
    await commands_tab.goto("/commands")
    await expect(commands_tab.locator("#commands-table")).to_contain_text("No commands yet")

    await page.goto(f"/devices/{device_id}")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await expect(commands_tab.locator("#live-status")).to_have_attribute("data-state", "live")
    updates = page.locator("#device-updates tbody tr")
    await expect(updates).to_have_count(3)
    await expect(page.locator("#device-commands")).to_contain_text("No commands yet")
    await page.evaluate("window.lunarisNotReloaded = true")

    asked: list[str] = []

    async def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await page.click("#update-all")
    command = page.locator("#device-commands .command-item").first
    await expect(command).to_have_attribute("data-status", "queued")
    await expect(command).to_contain_text("All updates")
    await expect(command.locator("button", has_text="Cancel")).to_be_visible()
    assert len(asked) == 1
    assert asked[0].startswith("Install all 3 offered updates on ")
    command_id = await command.get_attribute("data-command")
    row = commands_tab.locator(f"#command-{command_id}")
    await expect(row).to_have_attribute("data-live", f"command:{command_id}")
    await expect(row.locator("[data-status]")).to_have_attribute("data-status", "queued")

    agent.start()
    # Held at the first install: running, on Git.Git, and no longer cancellable.
    await expect(command).to_have_attribute("data-status", "running", timeout=AGENT_MS)
    await expect(command).to_contain_text("installing Git.Git", timeout=AGENT_MS)
    await expect(command.locator("button", has_text="Cancel")).to_have_count(0)
    await expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "running", timeout=AGENT_MS
    )
    assert (await api(server, seeded, f"/api/commands/{command_id}"))["results"] == []

    winget.open_gate()
    await expect(command).to_have_attribute("data-status", "succeeded", timeout=AGENT_MS)
    results = command.locator(".command-results li")
    await expect(results).to_have_count(3)
    outcomes = [
        (await li.get_attribute("data-package"), await li.get_attribute("data-outcome"))
        for li in await results.all()
    ]
    assert sorted(outcomes) == [
        ("Git.Git", "success"),
        ("Mozilla.Firefox", "success"),
        ("Vendor.NeedsReboot", "success_reboot_required"),
    ]
    await expect(command.locator('[data-package="Vendor.NeedsReboot"]')).to_contain_text(
        "reboot required"
    )
    # The agent's scan after the command: nothing waits any more.
    await expect(updates).to_have_count(0, timeout=AGENT_MS)
    await expect(page.locator("#device-updates")).to_contain_text("Up to date")
    await expect(page.locator("#device-history")).to_contain_text("Install succeeded")
    await expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=AGENT_MS
    )
    await expect(row.locator(".command-results li")).to_have_count(3)

    assert await page.evaluate("window.lunarisNotReloaded") is True
    assert sorted(winget.installs()) == ["Git.Git", "Mozilla.Firefox", "Vendor.NeedsReboot"]
    assert errors == []
    assert agent.stop() == 0


async def test_update_on_every_device_asks_first(server, seeded, chromium):
    agents = [Agent(server.base_url, seeded.enrollment_secret, f"PC-{n}") for n in range(2)]
    for one in agents:
        await one.register()
        await one.report({"updates": [update_row("Git.Git")]})
    page = await new_page(chromium, server)
    errors = watch_errors(page)
    await log_in(page, seeded)
    await page.goto("/updates/devices?package=Git.Git&source=winget")
    button = page.locator("#package-devices button", has_text="Update on all 2 devices")

    dialogs: list[str] = []

    def answer(accept: bool) -> Callable[[Any], Awaitable[None]]:
        async def handle(dialog: Any) -> None:
            dialogs.append(dialog.message)
            await (dialog.accept() if accept else dialog.dismiss())

        return handle

    page.once("dialog", answer(False))
    await button.click()
    await until(lambda: dialogs, "the confirmation")
    assert dialogs == ["Install Git 2.0 on 2 devices."]
    assert (await api(server, seeded, "/api/commands"))["total"] == 0

    page.once("dialog", answer(True))
    await button.click()
    await expect(page).to_have_url(re.compile(r"/commands\?deployment=[0-9a-f-]{36}$"))
    await expect(page.locator("#deployment-link")).to_be_visible()
    rows = page.locator("#commands-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Git.Git")
    assert (await api(server, seeded, "/api/commands"))["total"] == 2
    assert errors == []


SCREENSHOTS = os.environ.get("LUNARIS_SCREENSHOTS_DIR")


@pytest.mark.skipif(not SCREENSHOTS, reason="set LUNARIS_SCREENSHOTS_DIR to save screenshots")
async def test_screenshots(server, seeded, database_url, chromium):
    """The commands list and a device's commands panel: LUNARIS_SCREENSHOTS_DIR=docs/screenshots
    pytest tests/commands -k screenshots."""
    out = Path(SCREENSHOTS or ".")
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
    await add_user_to(database_url, "it-oncall", "another password", "admin")
    hosts = ["BER-LT-FIN-014", "BER-DT-ENG-101", "MUC-LT-SAL-007", "HAM-KIOSK-03", "LT-IT-0537"]
    agents = [Agent(server.base_url, seeded.enrollment_secret, name) for name in hosts]
    for one in agents:
        await one.register()
        await one.report()
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:

        async def run(one: Agent, steps: list[dict[str, Any]], **body: Any) -> None:
            created = await http.post(
                f"/api/devices/{one.device_id}/commands", json={"kind": "RUN_UPDATES", **body}
            )
            assert created.status_code == 201, created.text
            command_id = created.json()["id"]
            device = {"Authorization": f"Bearer {one.token}"}
            if steps:
                await http.post("/api/agent/heartbeat", json={}, headers=device)
            for sequence, step in enumerate(steps, start=1):
                answer = await http.post(
                    f"/api/agent/commands/{command_id}/progress",
                    json={"sequence": sequence, **step},
                    headers=device,
                )
                assert answer.status_code == 200, answer.text

        def done(pkg: str, seconds: float, **extra: Any) -> dict[str, Any]:
            return {
                "status": "running",
                "result": {
                    "package_identifier": pkg,
                    "outcome": "success",
                    "succeeded": True,
                    "duration_s": seconds,
                    **extra,
                },
            }

        async def waiting(one: Agent) -> list[str]:
            items = (await http.get(f"/api/devices/{one.device_id}/updates")).json()["items"]
            return [item["package_identifier"] for item in items if not item["truncated"]]

        showcase, done_one, running_one, queued_one = agents[:4]
        ids = await waiting(showcase)
        failed = {
            "status": "running",
            "result": {
                "package_identifier": ids[1],
                "outcome": "installer_failed",
                "succeeded": False,
                "installer_exit_code": 1603,
                "message": "Installer failed with exit code: 1603",
                "duration_s": 95.0,
            },
        }
        last = {"status": "failed", "message": "1 of 2 packages failed"}
        await run(showcase, [done(ids[0], 41.2), failed, last], packages=ids[:2])
        others = await waiting(done_one)
        reboot = done(others[-1], 66, outcome="success_reboot_required", reboot_required=True)
        await run(done_one, [done(others[0], 12.4), reboot, {"status": "succeeded"}], packages=None)
        started = {"status": "running", "package_started": (await waiting(running_one))[0]}
        await run(running_one, [started], packages=None)
        await run(queued_one, [], packages=None)
        await run(showcase, [], packages=ids[2:3] or None)
    page = await new_page(chromium, server)
    await log_in(page, seeded)
    shots = (("commands", "/commands"), ("device-commands", f"/devices/{showcase.device_id}"))
    for name, path in shots:
        await page.goto(path)
        await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        await page.screenshot(path=out / f"{name}.png", full_page=name == "device-commands")

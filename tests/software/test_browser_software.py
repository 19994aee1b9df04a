"""The software inventory in a real browser against a real server process: an admin types a
version range into the Software page's search and sees the PCs that need attention, opens
the app's devices, and watches a device's Installed tab change when its agent reports,
without reloading."""

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.console.helpers import Agent
from tests.console.test_browser import log_in, new_page
from tests.support import LiveServer, Seeded

pytestmark = pytest.mark.e2e

NOTEPAD = "Notepad++.Notepad++"


def notepad(version: str) -> dict[str, Any]:
    return {
        "package_identifier": NOTEPAD,
        "name": "Notepad++ (64-bit x64)",
        "version": version,
        "source": "winget",
    }


async def inventory(agent: Agent, software: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=agent.base_url) as http:
        response = await http.post(
            "/api/agent/inventory",
            json={"software": software},
            headers={"Authorization": f"Bearer {agent.token}"},
        )
    assert response.status_code == 200, response.text


async def test_a_range_search_finds_the_pcs_and_the_installed_tab_is_live(
    start_server, seeded: Seeded, chromium
):
    server: LiveServer = start_server()
    agents = {}
    for hostname, version in (("PC-OLD", "8.6.2"), ("PC-NEW", "8.8.1"), ("PC-MID", "8.7.9")):
        agent = Agent(server.base_url, seeded.enrollment_secret, hostname)
        await agent.register()
        await inventory(agent, [notepad(version)])
        agents[hostname] = agent

    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/software")
    await page.get_by_role("searchbox", name="Search software").fill(f"{NOTEPAD} < 8.8")
    row = page.locator("#software-table tbody tr", has_text=NOTEPAD)
    await expect(row).to_have_count(1)
    await expect(row.locator("td").nth(1)).to_have_text("2")  # in range
    await expect(row.locator("td").nth(2)).to_have_text("3")  # every device with it
    await row.get_by_role("link", name="2").click()
    devices = page.locator("#app-devices tbody tr")
    await expect(devices).to_have_count(2)
    await expect(devices.nth(0)).to_contain_text("PC-OLD")  # oldest version first
    await expect(devices.nth(1)).to_contain_text("PC-MID")

    # PC-OLD's Installed tab, while its agent upgrades Notepad++ and adds Git.
    await devices.nth(0).get_by_role("link", name="PC-OLD").click()
    await expect(page.get_by_role("link", name="Installed")).to_have_attribute(
        "aria-current", "page"
    )
    installed = page.locator("#device-installed")
    await expect(installed).to_contain_text("8.6.2")
    git = {"package_identifier": "Git.Git", "name": "Git", "version": "2.47.1"}
    await inventory(agents["PC-OLD"], [notepad("8.8.1"), git])
    await expect(installed).to_contain_text("2 apps")
    await expect(installed).to_contain_text("8.8.1")
    await expect(installed).not_to_contain_text("8.6.2")
    await page.get_by_role("link", name="Updates and history").click()
    await expect(page.locator("#device-history")).to_contain_text("Software version changed")

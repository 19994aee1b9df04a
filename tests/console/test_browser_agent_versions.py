"""Agent versions in a real browser against a real server process: an admin adds an MSI
through the upload form (a real wixl-built MSI), sets the fleet's target through its form,
and sees where the target stands; a second upload of the same version says why it is
refused; the page fits a phone."""

import pytest
from playwright.async_api import expect

from tests.agent.self_update_support import build_msi
from tests.console.helpers import Agent
from tests.console.test_browser import log_in, new_page
from tests.support import LiveServer, Seeded

pytestmark = pytest.mark.e2e


async def test_an_admin_adds_a_version_and_sets_the_fleets_target(
    start_server, seeded: Seeded, chromium, tmp_path
):
    server: LiveServer = start_server()
    msi = build_msi(tmp_path / "msi", "0.2.0")
    for hostname in ("PC-01", "PC-02"):
        agent = Agent(server.base_url, seeded.enrollment_secret, hostname)
        await agent.register()
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/settings/agent-versions")
    await expect(page.locator("#agent-versions")).to_contain_text("No agent versions yet")

    form = page.locator("#add-version")
    await form.locator('input[name="version"]').fill("0.2.0")
    await form.locator('input[name="file"]').set_input_files(str(msi))
    await form.locator('button[type="submit"]').click()
    row = page.locator('#agent-versions tr[data-version="0.2.0"]')
    await expect(row).to_contain_text("0.2.0")
    await expect(page.locator("#agents-running")).to_contain_text("on 2 devices")

    # The same version again: refused, and the page says why.
    form = page.locator("#add-version")
    await form.locator('input[name="version"]').fill("0.2.0")
    await form.locator('input[name="file"]').set_input_files(str(msi))
    await form.locator('button[type="submit"]').click()
    await expect(page.locator(".alert.error")).to_contain_text("is there already")

    target = page.locator("#set-target")
    await target.locator('select[name="version"]').select_option("0.2.0")
    await target.locator('input[name="at_once"]').fill("5")
    await target.locator('button[type="submit"]').click()
    fleet = page.locator('#agent-targets tr[data-target="fleet"]')
    # The test agents say no self_update: counted, not moved.
    await expect(fleet).to_contain_text("2 cannot update themselves")
    await expect(fleet).to_contain_text("5 at once")

    await page.set_viewport_size({"width": 390, "height": 800})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"

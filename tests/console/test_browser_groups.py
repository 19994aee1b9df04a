"""Groups and tags in a real browser against a real server process: tick devices and tag
them, create a group through its form, filter the device list by it, and see a device's
groups on its page."""

import re

import pytest
from playwright.async_api import expect

from tests.console.helpers import Agent
from tests.console.test_browser import enrolled, log_in, new_page
from tests.support import LiveServer, Seeded

pytestmark = pytest.mark.e2e

HOSTNAMES = ("BER-LAPTOP-01", "BER-LAPTOP-02", "MUC-DESK-07")


async def test_an_admin_tags_devices_and_groups_them(start_server, seeded: Seeded, chromium):
    server: LiveServer = start_server()
    agents: list[Agent] = await enrolled(server, seeded, HOSTNAMES)
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)

    # Tick the two Berlin laptops and give them a tag.
    await page.goto("/devices?q=ber-")
    rows = page.locator("#devices-table tbody tr")
    await expect(rows).to_have_count(2)
    for agent in agents[:2]:
        await page.locator(f'#device-{agent.device_id} input[name="device_id"]').check()
    await page.fill('#bulk-form input[name="tags"]', "Pilot")
    await page.click("#bulk-add-tags")
    await expect(page).to_have_url(re.compile(r"/devices\?q=ber-$"))
    for agent in agents[:2]:
        chip = page.locator(f"#device-{agent.device_id} .pill.tag")
        await expect(chip).to_have_text("pilot")

    # A group of the devices tagged pilot, made through the form.
    await page.goto("/groups")
    form = page.locator("#new-group form")
    await form.locator('input[name="name"]').fill("Pilot ring")
    await form.locator('input[name="tags"]').fill("pilot")
    await form.locator('select[name="tag_source"]').select_option("admin")
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("h1")).to_have_text("Pilot ring")
    await expect(page.locator("#group-members")).to_have_attribute("data-members", "2")
    await page.goto("/groups")
    await expect(page.locator("#groups [data-members]")).to_have_attribute("data-members", "2")
    await page.click("#groups a.strong")

    # Its devices are the device list filtered by it; the filter stays in the address.
    await page.click("#group-members")
    await expect(page).to_have_url(re.compile(r"/devices\?group_id=\d+"))
    await expect(page.locator("#devices-table tbody tr")).to_have_count(2)
    await page.select_option('select[name="group_id"]', label="Any group")
    await expect(page.locator("#devices-table tbody tr")).to_have_count(3)

    # A device's page says which groups it is in, and how.
    await page.goto(f"/devices/{agents[0].device_id}")
    await expect(page.locator("#device-groups")).to_contain_text("Pilot ring")
    await expect(page.locator("#device-tags")).to_contain_text("pilot")
    await page.goto(f"/devices/{agents[2].device_id}")
    await expect(page.locator("#device-groups")).to_have_text("none")

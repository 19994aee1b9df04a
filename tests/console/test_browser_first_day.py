"""What an admin meets on the first day, in a real browser: a device whose only scan failed
is "not scanned yet" (list, filter, its page, the dashboard, compliance); an offline PC's
page says what waiting commands do; a viewer's Settings page says whom to ask for a
secret; a run's confirmation says what installs where and what waits for offline PCs."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import insert

from lunaris_server.db import Database
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import DeviceUpdate
from tests.browser import answer_next_dialog
from tests.commands.test_browser import until
from tests.console.helpers import Agent, add_user_to
from tests.console.test_browser import log_in, new_page
from tests.support import update_row

pytestmark = pytest.mark.e2e

SEVEN_ZIP = update_row("7zip.7zip", "23.01", "24.08", name="7-Zip")


async def offline_device_waiting_for_7zip(database_url: str) -> str:
    """A PC last seen two hours ago, whose last good scan found 7-Zip waiting."""
    seen = datetime.now(UTC) - timedelta(hours=2)
    device_id = str(uuid.uuid4())
    database = Database(database_url)
    try:
        async with database.session() as session:
            device = {"id": device_id, "hostname": "OLD-PC", "token_hash": uuid.uuid4().hex}
            times = {"enrolled_at": seen, "last_seen_at": seen, "last_scan_at": seen}
            await session.execute(
                insert(Device),
                [{**device, **times, "last_good_scan_at": seen, "updates_count": 1}],
            )
            row = {k: v for k, v in SEVEN_ZIP.items() if k != "source"}
            await session.execute(
                insert(DeviceUpdate),
                [{**row, "source": "winget", "device_id": device_id, "first_seen_at": seen}],
            )
            await session.commit()
    finally:
        await database.dispose()
    return device_id


async def test_an_admins_first_day(start_server, seeded, database_url, chromium):
    offline_id = await offline_device_waiting_for_7zip(database_url)
    await add_user_to(database_url, "vera", "viewer password", "viewer")
    server = start_server()
    fine = Agent(server.base_url, seeded.enrollment_secret, "FINE-PC")
    failing = Agent(server.base_url, seeded.enrollment_secret, "FAILING-PC")
    for agent in (fine, failing):
        await agent.register()
    await fine.report({"updates": [SEVEN_ZIP]})
    await failing.report({"scan_error": {"code": "winget_missing", "message": "no winget"}})

    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    stat = page.locator('[data-stat="not_scanned"] .stat-value')
    await expect(stat).to_have_attribute("data-value", "1")
    await expect(page.locator('[data-figure="not_scanned"] .stat-value')).to_have_attribute(
        "data-value", "1"
    )

    # The list: not a green 0, and its own filter; "Up to date" leaves it out.
    await page.goto("/devices")
    row = page.locator("#devices-table tr", has_text="FAILING-PC")
    await expect(row.locator('[data-updates="unscanned"]')).to_have_text("not scanned yet")
    await expect(row.locator(".pill.ok")).to_have_count(0)
    await page.select_option("select[name=has_updates]", "unscanned")
    await expect(page).to_have_url(re.compile(r"has_updates=unscanned"))
    rows = page.locator("#devices-table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("FAILING-PC")
    await expect(page.locator("#devices-table [data-total]")).to_have_text("1 device matches")
    await page.select_option("select[name=has_updates]", "no")
    await expect(page.locator("#devices-table")).to_contain_text("No devices match")

    # Its page: the failure, and no claim that it is up to date.
    await page.goto(f"/devices/{failing.device_id}")
    await expect(page.locator("#device-overview .alert.error")).to_contain_text(
        "No scan has worked on it yet"
    )
    await expect(page.locator("#device-updates [data-not-scanned]")).to_contain_text(
        "Not scanned yet"
    )
    await expect(page.locator("#device-updates")).not_to_contain_text("Up to date")
    await expect(page.locator("#device-reach")).to_contain_text("Commands go at its next check-in")

    # An offline PC's page says what happens to commands, with the time it was last seen.
    await page.goto(f"/devices/{offline_id}")
    reach = page.locator("#device-reach")
    await expect(reach).to_contain_text("Offline since ")
    await expect(reach).to_contain_text("— commands wait until it is back")
    await expect(reach.locator("time")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))

    # A run's confirmation names the package, its version, the devices, and the offline one.
    await page.goto("/updates/devices?package=7zip.7zip&source=winget")
    asked = answer_next_dialog(page, accept=False)
    await page.click("#package-devices button:has-text('Update on all 2 devices')")
    await until(lambda: asked, "the confirmation")
    assert asked == [
        "Install 7-Zip 24.08 on 2 devices; 1 is offline and will install when it is back."
    ]
    # From the fleet's list, a page asks the same before anything runs. (The list's counts
    # are kept by report diffs, which the PC put in the database directly never went through.)
    await page.goto("/updates")
    await page.click('#updates-table button[data-package="7zip.7zip"]')
    await expect(page.locator("#run-confirmation")).to_have_text(asked[0])

    # A viewer is told to ask an admin for an enrollment secret.
    viewer = await new_page(chromium, server)
    await log_in(viewer, "vera", "viewer password")
    await viewer.goto("/settings")
    await expect(viewer.locator("#ask-for-secret")).to_contain_text("ask an admin for one")
    await expect(viewer.locator("body")).not_to_contain_text("from below")

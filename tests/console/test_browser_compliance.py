"""The dashboard's compliance card in a real browser follows agents live: a device that
reports an update is missing one, and compliant again once its update is gone, without a
reload (the consoles' shared count is switched off: LUNARIS_COMPLIANCE_CACHE_S=0)."""

import pytest
from playwright.async_api import expect

from tests.console.helpers import Agent
from tests.console.test_browser import log_in, new_page
from tests.support import Seeded, seed_database, update_row

pytestmark = pytest.mark.e2e

LIVE_WITHIN_MS = 5000


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    return await seed_database(database_url)


async def test_the_compliance_card_follows_agents_live(start_server, seeded, chromium):
    server = start_server(LUNARIS_COMPLIANCE_CACHE_S="0")
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    card = page.locator("#compliance")

    agent = Agent(server.base_url, seeded.enrollment_secret, "LIVE-PC-01")
    await agent.register()
    await agent.report({"updates": [update_row("Git.Git", "2.46.2", "2.47.1", name="Git")]})
    missing = card.locator('[data-figure="missing"] .stat-value')
    await expect(missing).to_have_attribute("data-value", "1", timeout=LIVE_WITHIN_MS)
    await expect(card.locator('[data-figure="age_0_7"] .stat-value')).to_have_attribute(
        "data-value", "1"
    )

    await agent.report({"updates": []})
    await expect(missing).to_have_attribute("data-value", "0", timeout=LIVE_WITHIN_MS)
    await expect(card.locator("[data-compliance=percent]")).to_have_text("100.0%")

"""A policy in a real browser against a real server process whose scheduler ticks every
second: an admin makes the rings' groups and the policy through their forms, and watches its
rollout on the policy's page, without reloading it: the pilot PC gets the update, installs
it, the version passes the pilot ring's gate, and the rest of the fleet gets it."""

from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.console.helpers import Agent
from tests.console.test_browser import log_in, new_page
from tests.support import LiveServer, Seeded, update_row

pytestmark = pytest.mark.e2e

ZOOM = update_row("Zoom.Zoom", "6.2.0", "6.3.0")
SCHEDULED_WITHIN_MS = 30_000
"""The scheduler ticks every second; on a loaded machine a tick and the live refresh after it
can take several."""


async def fleet(server: LiveServer, seeded: Seeded) -> dict[str, Agent]:
    agents = {}
    for hostname in ("PILOT-01", "OFFICE-01", "OFFICE-02"):
        agent = Agent(server.base_url, seeded.enrollment_secret, hostname)
        await agent.register()
        await agent.report({"updates": [ZOOM]})
        agents[hostname] = agent
    return agents


async def agent_api(agent: Agent, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=agent.base_url) as http:
        response = await http.request(
            method, path, headers={"Authorization": f"Bearer {agent.token}"}, **kwargs
        )
    assert response.status_code == 200, response.text
    return response.json()


async def install(agent: Agent) -> None:
    """The agent takes its command (a heartbeat) and reports Zoom installed."""
    commands = (await agent_api(agent, "POST", "/api/agent/heartbeat", json={}))["commands"]
    assert [(c["packages"], c["versions"]) for c in commands] == [
        (["Zoom.Zoom"], {"Zoom.Zoom": "6.3.0"})
    ]
    path = f"/api/agent/commands/{commands[0]['command_id']}/progress"
    result = {"package_identifier": "Zoom.Zoom", "outcome": "success", "succeeded": True}
    for step in (
        {"sequence": 1, "status": "running", "result": result},
        {"sequence": 2, "status": "succeeded"},
    ):
        await agent_api(agent, "POST", path, json=step)


async def make_group(page: Page, name: str, glob: str) -> None:
    await page.goto("/groups")
    form = page.locator("#new-group form")
    await form.locator('input[name="name"]').fill(name)
    await form.locator('input[name="hostname_glob"]').fill(glob)
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("h1")).to_have_text(name)


async def test_an_admin_makes_a_policy_and_watches_its_rollout_live(
    start_server, seeded: Seeded, chromium
):
    server: LiveServer = start_server(LUNARIS_SCHEDULER_INTERVAL_S="1")
    agents = await fleet(server, seeded)
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        rule = await http.post("/api/package-rules", json={"package": "Zoom.*", "action": "auto"})
        assert rule.status_code == 201, rule.text
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await make_group(page, "Pilot", "PILOT-*")
    await make_group(page, "Office", "OFFICE-*")

    await page.goto("/policies")
    form = page.locator("#new-policy form")
    await form.locator('input[name="name"]').fill("Zoom everywhere")
    await form.locator('input[name="always"]').check()
    await form.locator('select[name="ring0_group"]').select_option(label="Pilot")
    await form.locator('input[name="ring0_min_devices"]').fill("1")
    await form.locator('input[name="ring0_min_success"]').fill("100")
    await form.locator('select[name="ring1_group"]').select_option(label="Office")
    await form.locator('button[type="submit"]').click()
    await expect(page.locator("h1")).to_have_text("Zoom everywhere")
    await page.evaluate("window.notReloaded = true")

    # The next tick queues Zoom on the pilot PC: its ring shows it, live.
    row = page.locator('#rollouts tr[data-rollout="Zoom.Zoom@6.3.0"]')
    cells = row.locator("td")
    await expect(cells.nth(2)).to_contain_text("1 queued", timeout=SCHEDULED_WITHIN_MS)
    await expect(cells.nth(3)).to_have_text("waiting")

    # The pilot installs it: the ring says so, the gate (1 device, 100%) lets the office
    # ring take it at the next tick, and both office PCs are queued.
    await install(agents["PILOT-01"])
    await expect(cells.nth(2)).to_contain_text("1 succeeded", timeout=SCHEDULED_WITHIN_MS)
    await expect(cells.nth(3)).to_contain_text("2 queued", timeout=SCHEDULED_WITHIN_MS)
    await expect(cells.nth(4)).to_have_text("ring 2")
    await install(agents["OFFICE-01"])
    await expect(cells.nth(3)).to_contain_text("1 succeeded", timeout=SCHEDULED_WITHIN_MS)
    assert await page.evaluate("window.notReloaded") is True

"""The console in a real browser (headless Chromium) against real server processes."""

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import insert

from lunaris_server.db import Database
from lunaris_server.devices.models import Device
from tests.console.helpers import Agent, add_user_to
from tests.support import LiveServer, Seeded, update_row

pytestmark = pytest.mark.e2e

HOSTNAMES = ("BER-LAPTOP-01", "BER-LAPTOP-02", "MUC-DESK-07", "HAM-KIOSK-03")
LIVE_WITHIN_MS = 2000


async def new_page(chromium: Any, server: LiveServer) -> Page:
    context = await chromium.new_context(
        base_url=server.base_url, viewport={"width": 1280, "height": 800}
    )
    page: Page = await context.new_page()
    return page


async def log_in(page: Page, username: str, password: str) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Dashboard")


async def enrolled(server: LiveServer, seeded: Seeded, hostnames: tuple[str, ...]) -> list[Agent]:
    agents = [Agent(server.base_url, seeded.enrollment_secret, name) for name in hostnames]
    for agent in agents:
        await agent.register()
        await agent.report()
    return agents


async def api_devices(server: LiveServer, seeded: Seeded) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        items: list[dict[str, Any]] = (await http.get("/api/devices?limit=500")).json()["items"]
    return items


async def test_admin_logs_in_and_browses_the_fleet(start_server, seeded, chromium):
    server = start_server()
    agents = await enrolled(server, seeded, HOSTNAMES)
    page = await new_page(chromium, server)
    script_errors: list[str] = []
    page.on("console", lambda m: script_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    await log_in(page, seeded.username, seeded.password)

    devices = await api_devices(server, seeded)
    expected = {
        "devices": len(devices),
        "online": sum(d["status"] == "online" for d in devices),
        "offline": sum(d["status"] == "offline" for d in devices),
        "with_updates": sum(d["updates_count"] > 0 for d in devices),
        "pending_updates": sum(d["updates_count"] for d in devices),
        "scan_errors": sum(d["scan_error"] is not None for d in devices),
        "not_scanned": sum(d["last_good_scan_at"] is None for d in devices),
    }
    for stat, value in expected.items():
        await expect(page.locator(f'[data-stat="{stat}"] .stat-value')).to_have_attribute(
            "data-value", str(value)
        )

    await page.click("nav.nav >> text=Devices")
    rows = page.locator("#devices-table tbody tr")
    await expect(rows).to_have_count(4)
    await page.fill("#device-search", "ber")  # filters as you type
    await expect(rows).to_have_count(2)
    await expect(page).to_have_url(re.compile(r"[?&]q=ber"))
    await page.click("#devices-table th >> text=Hostname")  # ascending -> descending
    await expect(rows.first).to_contain_text("BER-LAPTOP-02")
    await expect(page).to_have_url(re.compile(r"[?&]sort=-hostname"))
    await page.go_back()
    await expect(rows.first).to_contain_text("BER-LAPTOP-01")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await page.fill("#device-search", "")
    await page.press("#device-search", "Enter")
    await expect(rows).to_have_count(4)

    await page.click("#devices-table >> text=MUC-DESK-07")
    await expect(page.locator("#device-overview h1")).to_contain_text("MUC-DESK-07")
    muc = next(a for a in agents if a.hostname == "MUC-DESK-07")
    count = next(d["updates_count"] for d in devices if d["id"] == muc.device_id)
    await expect(page.locator("#device-updates tbody tr")).to_have_count(count)
    assert script_errors == []  # htmx reports bad attributes (e.g. hx-trigger) as errors


async def test_the_device_list_pages_forwards_and_back(
    start_server, seeded, database_url, chromium
):
    await insert_devices(database_url, [f"PC-{n:03}" for n in range(120)])
    server = start_server()
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/devices")
    first_row = page.locator("#devices-table tbody tr").first
    await expect(first_row).to_contain_text("PC-000")
    await page.click("#devices-table >> text=Next →")
    await expect(first_row).to_contain_text("PC-050")
    await page.click("#devices-table >> text=Next →")
    await expect(first_row).to_contain_text("PC-100")
    await expect(page.locator("#devices-table .page-of")).to_have_text("Page 3 of 3")
    await expect(page).to_have_url(re.compile(r"[?&]page=3&after="))  # a seek, not an offset
    await page.click("#devices-table >> text=← Previous")
    await expect(first_row).to_contain_text("PC-050")
    await expect(page).to_have_url(re.compile(r"[?&]before="))
    await page.go_back()  # the URL held the place: history brings page 3 back
    await expect(first_row).to_contain_text("PC-100")


async def insert_devices(database_url: str, hostnames: list[str]) -> None:
    now = datetime.now(UTC)
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                insert(Device),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "hostname": hostname,
                        "token_hash": uuid.uuid4().hex,
                        "enrolled_at": now,
                        "last_seen_at": now,
                        "updates_count": 0,
                    }
                    for hostname in hostnames
                ],
            )
            await session.commit()
    finally:
        await database.dispose()


async def test_a_viewer_sees_no_admin_actions_and_the_server_refuses_them(
    start_server, seeded, database_url, chromium
):
    await add_user_to(database_url, "vera", "viewer password", "viewer")
    server = start_server()
    page = await new_page(chromium, server)
    await log_in(page, "vera", "viewer password")
    await page.goto("/settings")
    await expect(page.locator(".tabs")).not_to_contain_text("Users")
    await expect(page.locator("text=Create secret")).to_have_count(0)
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = await page.request.post(
        "/settings/enrollment-secrets", form={"name": "sneaky", "csrf_token": token or ""}
    )
    assert refused.status == 403
    assert "You are not allowed to do that" in await refused.text()
    assert (await page.request.get("/settings/users")).status == 403


async def test_a_post_without_the_csrf_token_is_refused(start_server, seeded, chromium):
    server = start_server()
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    missing = await page.request.post("/settings/enrollment-secrets", form={"name": "forged"})
    assert missing.status == 403
    await page.goto("/settings")
    await page.fill("input[name=name]", "Berlin rollout")
    await page.click("text=Create secret")
    await expect(page.locator("#new-secret")).to_contain_text("lne_")
    await expect(page.locator("#enrollment-secrets tbody")).not_to_contain_text("forged")
    assert page.url.endswith("/settings#enrollment-secrets")  # redirected: a reload is a GET
    await page.reload()
    await expect(page.locator("#enrollment-secrets tbody tr")).to_have_count(2)
    await expect(page.locator("#new-secret")).to_have_count(0)


async def test_the_page_follows_agents_live_without_a_reload(start_server, seeded, chromium):
    server = start_server()
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await page.goto("/devices")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await expect(page.locator("#devices-table")).to_contain_text("No devices yet")

    agent = Agent(server.base_url, seeded.enrollment_secret, "LIVE-PC-01")
    await agent.register()
    row = page.locator(f"#device-{agent.device_id}")
    await expect(row).to_contain_text("LIVE-PC-01", timeout=LIVE_WITHIN_MS)
    updates = {
        "updates": [
            update_row("Git.Git", "2.46.2", "2.47.1", name="Git"),
            update_row("7zip.7zip", "23.01", "24.08", name="7-Zip"),
        ]
    }
    await agent.report(updates)
    await expect(row.locator("[data-updates]")).to_have_attribute(
        "data-updates", "2", timeout=LIVE_WITHIN_MS
    )

    await page.click("nav.nav >> text=Dashboard")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    second = Agent(server.base_url, seeded.enrollment_secret, "LIVE-PC-02")
    await second.register()
    await second.report(updates)
    stat = page.locator('[data-stat="devices"] .stat-value')
    await expect(stat).to_have_attribute("data-value", "2", timeout=LIVE_WITHIN_MS)
    await expect(page.locator('[data-stat="pending_updates"] .stat-value')).to_have_attribute(
        "data-value", "4", timeout=LIVE_WITHIN_MS
    )
    await expect(page.locator("#recent")).to_contain_text("LIVE-PC-02", timeout=LIVE_WITHIN_MS)


async def test_a_new_admins_empty_dashboard_comes_alive_with_the_first_agent(
    start_server, seeded, chromium
):
    server = start_server()
    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    await expect(page.locator("#charts")).to_contain_text("No devices yet")
    await expect(page.locator("#recent")).to_be_hidden()
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    agent = Agent(server.base_url, seeded.enrollment_secret, "FIRST-PC")
    await agent.register()
    await agent.report()
    await expect(page.locator("#charts")).to_contain_text(
        "Devices by status", timeout=LIVE_WITHIN_MS
    )
    await expect(page.locator("#recent")).to_contain_text("FIRST-PC", timeout=LIVE_WITHIN_MS)


SCREENSHOTS = os.environ.get("LUNARIS_SCREENSHOTS_DIR")
SCREENSHOT_HOSTS = (
    "BER-LT-FIN-014",
    "BER-LT-HR-022",
    "BER-DT-ENG-101",
    "BER-DT-ENG-102",
    "MUC-LT-SAL-007",
    "MUC-DT-OPS-031",
    "HAM-LT-MKT-019",
    "HAM-KIOSK-03",
    "DESKTOP-7D5MG11",
    "LT-IT-0537",
    "LT-IT-0541",
    "DESKTOP-ZGIZPFX",
)


async def _age_the_fleet(database_url: str, agents: list[Agent]) -> None:
    """Spreads the history over the last weeks and lets two PCs go quiet, as a real fleet
    looks after a month (the agent API can only ever say "now")."""
    import random
    from datetime import timedelta

    from sqlalchemy import select

    from lunaris_server.db import Database
    from lunaris_server.devices.models import Device
    from lunaris_server.updates.models import UpdateEvent

    rng = random.Random(7)
    database = Database(database_url)
    try:
        async with database.session() as session:
            for event in await session.scalars(select(UpdateEvent)):
                event.at -= timedelta(days=rng.choice([0, 1, 2, 3, 5, 8, 12, 15, 19, 24, 28]))
            for agent in agents[-2:]:
                device = await session.get(Device, agent.device_id)
                assert device is not None
                device.last_seen_at -= timedelta(hours=5)
            await session.commit()
    finally:
        await database.dispose()


SCREENSHOT_APPS = [
    ("Mozilla.Firefox", "Mozilla Firefox (x64 en-US)", ["133.0.3", "133.0", "132.0.2"]),
    ("Notepad++.Notepad++", "Notepad++ (64-bit x64)", ["8.7.4", "8.6.9", "8.7.1", "8.5.8"]),
    ("7zip.7zip", "7-Zip 24.09 (x64)", ["24.09", "24.08", "23.01"]),
    ("Google.Chrome", "Google Chrome", ["131.0.6778.205", "131.0.6778.86"]),
    (
        "Microsoft.VCRedist.2015+.x64",
        "Microsoft Visual C++ 2015-2022 Redistributable (x64)",
        ["14.42.34433.0", "14.40.33810.0"],
    ),
    ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat (64-bit)", ["24.005.20320", "24.004.20272"]),
    ("Zoom.Zoom", "Zoom Workplace (64-bit)", ["6.3.0", "6.2.11"]),
    ("Microsoft.Teams", "Microsoft Teams", ["24335.206.3314.5796"]),
    (
        "Cisco AnyConnect Secure Mobility Client",
        "Cisco AnyConnect Secure Mobility Client",
        ["4.10.08029", "4.9.06037"],
    ),
]
"""What the screenshots' PCs have installed (a version each, by the PC's number)."""


async def _agent_version_and_target(server: LiveServer, seeded: Seeded, work: Path) -> None:
    """An agent version (a real MSI, built with wixl) and the fleet's target, for the
    Agent versions page."""
    from tests.agent.self_update_support import build_msi

    msi = build_msi(work / "msi", "0.1.1")
    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        added = await http.put("/api/agent-versions/0.1.1", content=msi.read_bytes())
        assert added.status_code == 201, added.text
        target = await http.put("/api/agent-targets/fleet", json={"version": "0.1.1"})
        assert target.status_code == 200, target.text


@pytest.mark.skipif(not SCREENSHOTS, reason="set LUNARIS_SCREENSHOTS_DIR to save screenshots")
async def test_screenshots(start_server, seeded, database_url, chromium, tmp_path):
    """Saves a screenshot of each page: LUNARIS_SCREENSHOTS_DIR=docs/screenshots pytest -k
    screenshots."""
    out = Path(SCREENSHOTS or ".")
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any server runs
    from lunaris_agent.simulate.catalog import OS_VERSIONS

    server = start_server()
    agents = [
        Agent(
            server.base_url,
            seeded.enrollment_secret,
            name,
            os_version=OS_VERSIONS[n % len(OS_VERSIONS)],
            agent_version="0.1.0" if n % 3 else "0.1.1",
        )
        for n, name in enumerate(SCREENSHOT_HOSTS)
    ]
    for agent in agents:
        await agent.register()
        await agent.report()
    for agent in agents[:8]:
        await agent.report()  # a second scan: some resolved, some new
    await agents[3].report(
        {"scan_error": {"code": "0x8A15000F", "message": "Data required by the source is missing"}}
    )
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for n, agent in enumerate(agents):
            software = [
                {
                    "package_identifier": package,
                    "name": name,
                    "version": pick[n % len(pick)],
                }
                | ({"source": "winget"} if "." in package else {})
                for package, name, pick in SCREENSHOT_APPS
            ]
            sent = await http.post(
                "/api/agent/inventory",
                json={"software": software},
                headers={"Authorization": f"Bearer {agent.token}"},
            )
            assert sent.status_code == 200, sent.text
    await _age_the_fleet(database_url, agents)
    await add_user_to(database_url, "vera.schmidt", "viewer password", "viewer")
    await add_user_to(database_url, "it-oncall", "another password", "admin")
    page = await new_page(chromium, server)
    await page.goto("/login")
    await page.screenshot(path=out / "login.png")
    await log_in(page, seeded.username, seeded.password)
    await page.request.post(
        "/settings/enrollment-secrets",
        form={
            "name": "Berlin office rollout",
            "max_uses": "200",
            "csrf_token": await page.locator("input[name=csrf_token]").first.get_attribute("value")
            or "",
        },
    )
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await _agent_version_and_target(server, seeded, tmp_path)
    shots = [
        ("dashboard", "/"),
        ("devices", "/devices"),
        ("device", f"/devices/{agents[3].device_id}"),
        ("updates", "/updates"),
        ("update-devices", "/updates/devices?package=Google.Chrome&source=winget"),
        ("software", "/software?q=Notepad%2B%2B.Notepad%2B%2B%20%3C%208.7"),
        ("software-app", "/software/Notepad++.Notepad++?version_lt=8.7"),
        ("device-installed", f"/devices/{agents[0].device_id}/installed"),
        ("settings", "/settings"),
        ("agent-versions", "/settings/agent-versions"),
        ("users", "/settings/users"),
        ("audit", "/settings/audit"),
        ("not-found", "/devices/00000000-0000-4000-8000-000000000000"),
    ]
    for name, path in shots:
        await page.goto(path)
        await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        await page.screenshot(path=out / f"{name}.png")
    phone = await chromium.new_context(
        base_url=server.base_url, viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    await phone.add_cookies(await page.context.cookies())
    mobile = await phone.new_page()
    await mobile.goto("/")
    await mobile.screenshot(path=out / "dashboard-phone.png")

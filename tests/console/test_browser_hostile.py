"""Stored attribute injection, performed in a real browser against a real server process: a
device registers with a hostname carrying htmx attributes; an admin opening the audit log
must not send the request they name."""

import asyncio

import httpx
import pytest
from playwright.async_api import Request, expect

from tests.console.helpers import add_user_to
from tests.console.test_browser import log_in, new_page
from tests.support import seed_database

pytestmark = pytest.mark.e2e

ATTACK_HOSTNAME = (
    "pc hx-post=/settings/users/2/disable hx-trigger=load "
    "hx-include=[name=csrf_token] hx-swap=none x"
)


async def test_opening_the_audit_log_sends_no_request_a_hostname_asks_for(
    start_server, database_url, chromium
):
    seeded = await seed_database(database_url)
    await add_user_to(database_url, "bob", "bob's password", "admin")
    server = start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        users = (await http.get("/api/users", headers=seeded.auth_headers)).json()
        bob = next(u for u in users if u["username"] == "bob")
        assert bob["id"] == 2
        registered = await http.post(
            "/api/agent/register",
            json={
                "device_id": "0b5a3c1e-2f4d-4a6b-8c9d-0e1f2a3b4c5d",
                "hostname": ATTACK_HOSTNAME,
                "os_version": "Windows 11",
                "agent_version": "0.1.0",
                "enrollment_secret": seeded.enrollment_secret,
            },
        )
        assert registered.status_code == 200

    page = await new_page(chromium, server)
    await log_in(page, seeded.username, seeded.password)
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method != "GET" or "/settings/users" in request.url:
            sent.append(f"{request.method} {request.url}")

    page.on("request", record)
    await page.goto("/settings/audit")
    await expect(page.locator("#audit-log")).to_contain_text("device.register")
    await expect(page.locator("#audit-log")).to_contain_text(ATTACK_HOSTNAME)
    await asyncio.sleep(1.0)  # htmx's load triggers fire at once; give them time to show
    assert sent == []

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        users = (await http.get("/api/users", headers=seeded.auth_headers)).json()
    assert next(u for u in users if u["username"] == "bob")["disabled"] is False

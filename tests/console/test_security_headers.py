"""Security headers: what each answer carries, and that the console runs under its policy
in a real browser without a single violation."""

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from playwright.async_api import expect

from lunaris_server.app import create_app
from lunaris_server.core.settings import Environment
from tests.console.test_browser import enrolled, log_in, new_page

pytestmark = pytest.mark.e2e

CONSOLE_PAGES = (
    "/",
    "/devices",
    "/updates",
    "/commands",
    "/settings",
    "/settings/users",
    "/settings/tokens",
    "/settings/audit",
)


async def test_console_and_api_answers_carry_the_strict_policy(client):
    for path in ("/login", "/api/devices", "/readyz", "/no-such-page"):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in response.headers  # not in dev


async def test_the_api_docs_get_the_policy_swagger_needs_and_no_other_origin(client):
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline';" in policy  # Swagger UI sets inline styles
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    # Swagger UI is served by the server itself: the policy names no CDN, no font host,
    # no other origin at all.
    for host in ("cdn.jsdelivr.net", "fonts.googleapis.com", "fonts.gstatic.com"):
        assert host not in policy
        assert host not in docs.text
    assert "http:" not in policy
    assert "https:" not in policy


async def test_hsts_only_in_prod(settings):
    prod = settings.model_copy(update={"env": Environment.PROD, "cookie_secure": True})
    application = create_app(prod)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
            response = await http.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_every_console_page_runs_under_the_policy_without_violations(
    start_server, seeded, chromium
):
    server = start_server()
    agents = await enrolled(server, seeded, ("CSP-PC-01",))
    page = await new_page(chromium, server)
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    await log_in(page, seeded.username, seeded.password)
    for path in (*CONSOLE_PAGES, f"/devices/{agents[0].device_id}"):
        response = await page.goto(path)
        assert response is not None, path
        assert response.status == 200, path
        assert "frame-ancestors 'none'" in (await response.all_headers())["content-security-policy"]
        await page.wait_for_load_state("networkidle")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert problems == []

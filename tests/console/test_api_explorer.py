"""The API explorer at /api/docs: Swagger UI served by the server itself (no CDN), and
"Try it out" working in a real browser for a logged-in admin."""

import json
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from tests.console.test_browser import log_in, new_page
from tests.support import Seeded, seed_database

pytestmark = pytest.mark.e2e

SWAGGER_UI_ASSET = re.compile(r'(?:href|src)="(/api/docs/static/[^"]+)"')


async def test_the_explorer_loads_swagger_ui_from_this_server(client):
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assets = SWAGGER_UI_ASSET.findall(page.text)
    assert sorted(urlsplit(url).path for url in assets) == [
        "/api/docs/static/swagger-ui-bundle.js",
        "/api/docs/static/swagger-ui.css",
    ]
    assert re.search(r'(?:href|src)="(?:https?:)?//', page.text) is None  # nothing elsewhere
    for url in assets:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url  # a content hash: cached for good
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(response.content) > 100_000, url  # the real bundle, not a stub
    script = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text
    css = await client.get("/api/docs/static/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/static/redoc.standalone.js",  # shipped by the package, not used here
        "/api/docs/static/favicon.png",
        "/api/docs/static/__init__.py",
        "/api/docs/static/../core.py",
        "/api/docs/static/%2e%2e/core.py",
        "/api/docs/static/",
        "/api/docs/static/no-such-file.js",
    ],
)
async def test_only_the_two_swagger_ui_files_are_served(client, path):
    response = await client.get(path)
    assert response.status_code == 404, path


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    return await seed_database(database_url)


async def test_try_it_out_creates_an_enrollment_secret_and_nothing_leaves_the_server(
    start_server, seeded, chromium
):
    server = start_server()
    console = await new_page(chromium, server)
    await log_in(console, seeded.username, seeded.password)
    # The explorer in a tab of its own (the same session), watched from its first request:
    # leaving the dashboard would abort its own requests, which are not the explorer's.
    page = await console.context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto("/api/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Lunaris", timeout=15_000
    )
    assert await page.locator(".opblock").count() > 20  # every operation is listed
    operation = page.locator(
        '.opblock-post:has(.opblock-summary-path[data-path="/api/enrollment-secrets"])'
    )
    await expect(operation).to_have_count(1)
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("textarea.body-param__text").fill(
        json.dumps({"name": "from-the-explorer", "max_uses": 3})
    )
    await operation.locator("button.execute").click()

    live = operation.locator(".live-responses-table .response")
    await expect(live.locator(".response-col_status")).to_have_text("201", timeout=10_000)
    shown = json.loads(await live.locator(".response-col_description pre").first.inner_text())
    assert shown["name"] == "from-the-explorer"
    assert shown["created_by"] == "user:admin"  # the browser's session, not a token
    assert shown["secret"]

    async with httpx.AsyncClient(base_url=server.base_url, headers=seeded.auth_headers) as http:
        secrets: list[dict[str, Any]] = (await http.get("/api/enrollment-secrets")).json()
    created = [s for s in secrets if s["name"] == "from-the-explorer"]
    assert len(created) == 1
    assert created[0]["id"] == shown["id"]
    assert created[0]["max_uses"] == 3

    assert problems == []  # a request the policy refused would be reported here
    origin = urlsplit(server.base_url).netloc
    elsewhere = [
        url
        for url in requested
        if not url.startswith(("data:", "blob:")) and urlsplit(url).netloc != origin
    ]
    assert elsewhere == []
    assert any("/api/docs/static/swagger-ui-bundle.js" in url for url in requested)

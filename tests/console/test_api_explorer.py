"""The API explorer at /api/docs: Swagger UI served by the server itself (no CDN)."""

import re
from urllib.parse import urlsplit

import pytest

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

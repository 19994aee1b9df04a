"""Cookie-authenticated writes under /api need the CSRF header and a same-origin request:
the session cookie goes along with any request a browser makes, whoever's page asked."""

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from lunaris_server.commands.models import Command
from tests.support import (
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_device,
    update_row,
)


async def command_count(app: FastAPI) -> int:
    async with app_state(app).database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Command)) or 0)


async def logged_in_admin_with_device(app: FastAPI, client: httpx.AsyncClient) -> str:
    await create_user(app, "admin")
    device = await register_device(client, await create_secret(app))
    report = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row("Git.Git")]},
        headers=device.headers,
    )
    assert report.status_code == 200, report.text
    login = await client.post(
        "/api/auth/login", json={"username": "admin", "password": "correct horse"}
    )
    assert login.status_code == 200, login.text
    return device.device_id


async def test_a_text_plain_form_from_a_same_site_page_cannot_create_a_command(app, client):
    # What an auto-submitting <form enctype="text/plain"> on a sibling subdomain sends.
    await logged_in_admin_with_device(app, client)
    response = await client.post(
        "/api/updates/Git.Git/run",
        content=b"x=y",
        headers={
            "Content-Type": "text/plain",
            "Origin": "http://evil.testserver",
            "Sec-Fetch-Site": "same-site",
        },
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert await command_count(app) == 0


async def test_a_cookie_write_without_the_csrf_header_is_refused(app, client):
    device_id = await logged_in_admin_with_device(app, client)
    response = await client.post(
        f"/api/devices/{device_id}/commands", json={"kind": "RUN_UPDATES", "packages": None}
    )
    assert response.status_code == 403, response.text
    assert await command_count(app) == 0


async def test_a_foreign_origin_cannot_cancel_a_command(app, client):
    device_id = await logged_in_admin_with_device(app, client)
    api_token = await create_api_token(app, "admin")
    created = await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert created.status_code == 201, created.text
    command_id = created.json()["id"]
    token = (await client.get("/api/auth/csrf-token")).json()["csrf_token"]
    for headers in (
        {"Origin": "https://attacker.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        response = await client.post(
            f"/api/commands/{command_id}/cancel", headers={"X-CSRF-Token": token, **headers}
        )
        assert response.status_code == 403, (headers, response.text)
    detail = await client.get(f"/api/commands/{command_id}")
    assert detail.json()["status"] == "queued"


async def test_a_cookie_write_with_the_header_from_the_console_origin_goes_through(app, client):
    device_id = await logged_in_admin_with_device(app, client)
    token = (await client.get("/api/auth/csrf-token")).json()["csrf_token"]
    for headers in (
        {},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    ):
        response = await client.post(
            f"/api/devices/{device_id}/commands",
            json={"kind": "RUN_UPDATES", "packages": None},
            headers={"X-CSRF-Token": token, **headers},
        )
        assert response.status_code == 201, response.text
        # Withdrawn, so that the next is not refused as a second open command.
        cancel = await client.post(
            f"/api/commands/{response.json()['id']}/cancel", headers={"X-CSRF-Token": token}
        )
        assert cancel.status_code == 200, cancel.text
    # A token of another session is no token.
    other = app.state.console.csrf.token_for("another session")
    refused = await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers={"X-CSRF-Token": other},
    )
    assert refused.status_code == 403
    assert await command_count(app) == 2


async def test_api_tokens_and_agents_need_no_csrf_header(app, client):
    device_id = await logged_in_admin_with_device(app, client)
    api_token = await create_api_token(app, "admin")
    # The cookie is there too, and the request says it comes from elsewhere: the bearer
    # token is what authenticates, and a page on another site cannot have it.
    response = await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers={"Authorization": f"Bearer {api_token}", "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 201, response.text
    assert (
        await client.get("/api/auth/csrf-token", headers={"Authorization": f"Bearer {api_token}"})
    ).json() == {"csrf_token": None}
    device = await register_device(client, await create_secret(app, "second"), hostname="PC-2")
    heartbeat = await client.post(
        "/api/agent/heartbeat",
        json={},
        headers={**device.headers, "Origin": "https://elsewhere.example"},
    )
    assert heartbeat.status_code == 200, heartbeat.text


async def test_the_api_explorer_sends_the_token_from_its_page(app, client):
    device_id = await logged_in_admin_with_device(app, client)
    page = await client.get("/api/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert re.search(r"<script>|<script [^>]*>[^<]", page.text) is None  # no inline script
    assert "/static/api-docs.js?v=" in page.text
    script = await client.get("/static/api-docs.js")
    assert "requestInterceptor" in script.text
    assert "X-CSRF-Token" in script.text
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
    assert match, page.text
    response = await client.post(
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers={"X-CSRF-Token": match.group(1)},
    )
    assert response.status_code == 201, response.text

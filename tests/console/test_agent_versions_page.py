"""Settings → Agent versions in-process: an admin adds a version by upload (a multipart form
with the page's CSRF token), sees it with the agents the fleet runs, sets and removes a
target; bad uploads change nothing and say why; viewers see the page without its forms."""

import hashlib
import os
import re

import httpx
import pytest
from fastapi import FastAPI

from lunaris_server.core.settings import Settings
from tests.console.helpers import login, page_token
from tests.support import create_secret, create_user, register_device

PAGE = "/settings/agent-versions"
MSI = bytes.fromhex("d0cf11e0a1b11ae1") + os.urandom(2 * 1024 * 1024)


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def upload(
    http: httpx.AsyncClient, version: str, body: bytes = MSI, token: str | None = None
) -> httpx.Response:
    token = token if token is not None else await page_token(http, PAGE)
    return await http.post(
        PAGE,
        data={"csrf_token": token, "version": version},
        files={"file": (f"lunaris-agent-{version}-x64.msi", body, "application/x-msi")},
    )


async def test_an_admin_adds_a_version_and_moves_the_fleet_to_it(
    app: FastAPI, admin: httpx.AsyncClient, settings: Settings
) -> None:
    empty = await admin.get(PAGE)
    assert empty.status_code == 200
    assert "No agent versions yet" in empty.text
    secret = await create_secret(app)
    for hostname in ("PC-1", "PC-2"):
        await register_device(admin, secret, hostname=hostname, capabilities=["self_update"])

    added = await upload(admin, "0.2.0")
    assert added.status_code == 303, added.text
    assert added.headers["location"] == PAGE
    page = (await admin.get(PAGE)).text
    assert 'data-version="0.2.0"' in page
    assert hashlib.sha256(MSI).hexdigest() in page
    assert re.search(r"0\.1\.0</span> on 2 devices", page)
    stored = settings.resolved_agent_downloads_dir / "lunaris-agent-0.2.0-x64.msi"
    assert stored.read_bytes() == MSI

    form = {"scope": "fleet", "version": "0.2.0", "at_once": "1", "halt_after_failures": "2"}
    set_ = await admin.post(
        "/settings/agent-targets", data={**form, "csrf_token": await page_token(admin, PAGE)}
    )
    assert set_.status_code == 303, set_.text
    page = (await admin.get(PAGE)).text
    assert 'data-target="fleet"' in page
    assert "0 at 0.2.0; 2 waiting, 0 updating, 0 failed" in page
    assert "1 at once, halts after 2 failed" in page

    removed = await admin.post(
        "/settings/agent-targets/remove",
        data={"scope": "fleet", "csrf_token": await page_token(admin, PAGE)},
    )
    assert removed.status_code == 303
    assert 'data-target="fleet"' not in (await admin.get(PAGE)).text
    gone = await admin.post(
        "/settings/agent-versions/0.2.0/remove", data={"csrf_token": await page_token(admin, PAGE)}
    )
    assert gone.status_code == 303
    assert not stored.exists()


@pytest.mark.parametrize(
    ("version", "body", "status", "says"),
    [
        ("0.2.0", b"MZ\x90\x00 a program, not an MSI", 422, "not an MSI"),
        ("v2", MSI, 422, "is not an agent version"),
        ("0.2.0;rm", MSI, 422, "is not an agent version"),
    ],
    ids=["not-an-msi", "no-version", "hostile-version"],
)
async def test_a_bad_upload_says_why_and_changes_nothing(
    admin: httpx.AsyncClient, settings: Settings, version: str, body: bytes, status: int, says: str
) -> None:
    refused = await upload(admin, version, body)
    assert refused.status_code == status, refused.text[:300]
    assert says in refused.text
    folder = settings.resolved_agent_downloads_dir
    assert not folder.exists() or list(folder.iterdir()) == []


async def test_an_upload_without_the_pages_token_is_refused(
    admin: httpx.AsyncClient, settings: Settings
) -> None:
    refused = await upload(admin, "0.2.0", token="forged")
    assert refused.status_code == 403
    urlencoded = await admin.post(PAGE, data={"version": "0.2.0"})
    assert urlencoded.status_code in (403, 422)
    folder = settings.resolved_agent_downloads_dir
    assert not folder.exists() or list(folder.iterdir()) == []


async def test_a_target_older_than_an_agent_is_refused_on_the_page(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    secret = await create_secret(app)
    await register_device(admin, secret, agent_version="0.3.0", capabilities=["self_update"])
    assert (await upload(admin, "0.2.0")).status_code == 303
    form = {"scope": "fleet", "version": "0.2.0", "csrf_token": await page_token(admin, PAGE)}
    refused = await admin.post("/settings/agent-targets", data=form)
    assert refused.status_code == 409
    assert "runs a newer agent (0.3.0)" in refused.text
    forced = await admin.post(
        "/settings/agent-targets",
        data={**form, "force": "yes", "csrf_token": await page_token(admin, PAGE)},
    )
    assert forced.status_code == 303


async def test_viewers_see_versions_and_targets_but_no_forms(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await upload(admin, "0.2.0")).status_code == 303
    await admin.post("/logout", data={"csrf_token": await page_token(admin, PAGE)})
    await create_user(app, "viewer", "viewer password", role="viewer")
    assert (await login(client, "viewer", "viewer password")).status_code == 303
    page = (await client.get(PAGE)).text
    assert 'data-version="0.2.0"' in page
    assert 'id="add-version"' not in page
    assert 'id="set-target"' not in page
    assert "Remove" not in page
    token = await page_token(client, PAGE)
    assert (await upload(client, "0.3.0", token=token)).status_code == 403
    removed = await client.post("/settings/agent-versions/0.2.0/remove", data={"csrf_token": token})
    assert removed.status_code == 403

"""/settings offers the newest agent MSI from the downloads folder under a stable name, with
its version, size and SHA-256, and the msiexec line for this server."""

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from lunaris_server.agents import files
from lunaris_server.agents import service as agents
from lunaris_server.core.settings import Settings
from tests.console.helpers import login
from tests.support import create_user


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


def put(downloads: Path, name: str, content: bytes, *, mtime: int) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / name
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


async def test_the_newest_build_is_offered_with_version_size_and_hash(
    admin: httpx.AsyncClient, settings: Settings
) -> None:
    downloads = settings.resolved_agent_downloads_dir
    put(downloads, "lunaris-agent-0.1.0-x64.msi", b"old MSI", mtime=1_700_000_000)
    newest = b"new MSI" * 1000
    put(downloads, "lunaris-agent-0.2.0-x64.msi", newest, mtime=1_700_000_100)

    page = (await admin.get("/settings")).text

    assert 'href="/downloads/lunaris-agent.msi"' in page
    assert "version 0.2.0" in page
    assert hashlib.sha256(newest).hexdigest() in page
    assert 'href="/downloads/lunaris-agent-0.2.0-x64.msi"' in page
    command = (
        "msiexec /i lunaris-agent.msi /qn API_URL=http://127.0.0.1:8000/api ENROLLMENT_SECRET="
    )
    assert command in page

    download = await admin.get("/downloads/lunaris-agent.msi")
    assert download.status_code == 200
    assert download.content == newest
    assert download.headers["content-type"] == "application/x-msi"
    # Saved under the name the msiexec line installs.
    assert 'filename="lunaris-agent.msi"' in download.headers["content-disposition"]
    pinned = await admin.get("/downloads/lunaris-agent-0.1.0-x64.msi")
    assert pinned.content == b"old MSI"


async def test_no_build_no_download(admin: httpx.AsyncClient, settings: Settings) -> None:
    page = (await admin.get("/settings")).text
    assert 'id="agent-download"' not in page
    assert "infra/installer/build" in page
    assert (await admin.get("/downloads/lunaris-agent.msi")).status_code == 404


async def test_downloads_need_a_console_login(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    put(settings.resolved_agent_downloads_dir, "lunaris-agent-0.2.0-x64.msi", b"MSI", mtime=1)
    response = await client.get("/downloads/lunaris-agent.msi")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_the_hash_follows_a_replaced_file(tmp_path: Path) -> None:
    path = put(tmp_path, "lunaris-agent-0.2.0-x64.msi", b"first", mtime=1_700_000_000)
    first = await agents.latest(tmp_path)
    put(tmp_path, path.name, b"second build", mtime=1_700_000_050)
    second = await agents.latest(tmp_path)
    assert first is not None
    assert second is not None
    assert first.sha256 == hashlib.sha256(b"first").hexdigest()
    assert second.sha256 == hashlib.sha256(b"second build").hexdigest()
    assert (second.version, second.size_bytes) == ("0.2.0", len(b"second build"))


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("lunaris-agent-1.2.3-x64.msi", "1.2.3"),
        ("lunaris-agent-0.1.0.msi", "0.1.0"),
        ("lunaris-agent-1.4.0rc1-x64.msi", "1.4.0rc1"),
        ("lunaris-agent-nightly.msi", None),
    ],
)
async def test_the_version_comes_from_the_file_name(
    tmp_path: Path, name: str, version: str | None
) -> None:
    put(tmp_path, name, b"MSI", mtime=1)
    found = await agents.latest(tmp_path)
    # A file that names no version is no agent version: agents could not be moved to it.
    assert (found.version if found else None) == version


async def test_versions_are_listed_in_version_order_not_by_file_time(tmp_path: Path) -> None:
    put(tmp_path, "lunaris-agent-0.10.0-x64.msi", b"ten", mtime=1)
    put(tmp_path, "lunaris-agent-0.9.1-x64.msi", b"nine", mtime=2)
    put(tmp_path, "lunaris-agent-0.9.1.msi", b"nine, renamed", mtime=3)
    found = await agents.list_versions(tmp_path)
    assert [(v.version, v.name) for v in found] == [
        ("0.10.0", "lunaris-agent-0.10.0-x64.msi"),
        ("0.9.1", "lunaris-agent-0.9.1.msi"),  # of one version's two files, the newer
    ]


def test_only_installer_names_are_served(tmp_path: Path) -> None:
    put(tmp_path, "lunaris-agent-0.2.0-x64.msi", b"MSI", mtime=1)
    (tmp_path / "secret_key").write_text("no")
    assert files.path_of(tmp_path, "lunaris-agent-0.2.0-x64.msi") == tmp_path / (
        "lunaris-agent-0.2.0-x64.msi"
    )
    assert files.path_of(tmp_path, "secret_key") is None
    assert files.path_of(tmp_path, "../lunaris-agent-0.2.0-x64.msi") is None

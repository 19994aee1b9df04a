"""What the server keeps in ``LUNARIS_DATA_DIR`` (the SQLite database, its WAL, the generated
secret key) is the owner's only, under a usual umask, from the moment it exists."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.support import run_cli, server_env, start_live_server

pytestmark = pytest.mark.e2e

HARNESS_FILES = {"server.log"}  # written by the test harness, not the server


@pytest.fixture
def usual_umask() -> object:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_the_data_dir_and_its_files_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    database_url = f"sqlite+aiosqlite:///{data_dir / 'lunaris.db'}"
    env = server_env(database_url=database_url, data_dir=data_dir)
    env.pop("LUNARIS_SECRET_KEY")  # generated into the data dir
    migrated = run_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    server = start_live_server(database_url=database_url, data_dir=data_dir, LUNARIS_SECRET_KEY="")
    try:
        assert httpx.get(f"{server.base_url}/login", timeout=10).status_code == 200
        files = {p.name: _mode(p) for p in data_dir.iterdir() if p.name not in HARNESS_FILES}
    finally:
        server.stop()
    assert {"lunaris.db", "lunaris.db-wal", "secret_key"} <= files.keys()
    assert {name: mode for name, mode in files.items() if mode & 0o077} == {}
    assert _mode(data_dir) == 0o700

"""The administration CLI, run as the real ``lunaris-server`` process."""

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.databases import POSTGRES_URL
from tests.support import BIN, free_port, run_cli, server_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return server_env(database_url=database_url, data_dir=tmp_path / "data")


def test_migrate_is_idempotent(env):
    for _ in range(2):
        result = run_cli(env, "migrate")
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


def test_user_add_reads_password_from_stdin_and_refuses_duplicates(env):
    result = run_cli(
        env, "user", "add", "alice", "--role", "admin", "--password-stdin", stdin="s3cret-pass\n"
    )
    assert result.returncode == 0, result.stderr
    again = run_cli(env, "user", "add", "alice", "--password-stdin", stdin="other-pass\n")
    assert again.returncode != 0
    assert "already exists" in again.stderr
    short = run_cli(env, "user", "add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode != 0
    assert "at least 8" in short.stderr


def test_token_add_prints_token_alone_on_last_line(env, live_server_for):
    run_cli(
        env, "user", "add", "alice", "--role", "viewer", "--password-stdin", stdin="s3cret-pass\n"
    )
    result = run_cli(env, "token", "add", "--user", "alice")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("lna_")
    server = live_server_for(env)
    response = httpx.get(
        f"{server.base_url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["username"] == "alice"
    missing = run_cli(env, "token", "add", "--user", "nobody")
    assert missing.returncode != 0
    assert "no user named" in missing.stderr


def test_enrollment_add_list_revoke(env, live_server_for):
    result = run_cli(
        env, "enrollment", "add", "--name", "Berlin", "--expires-in", "7d", "--max-uses", "2"
    )
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("lne_")
    listing = run_cli(env, "enrollment", "list")
    assert "Berlin" in listing.stdout
    assert "0/2" in listing.stdout
    assert "active" in listing.stdout
    assert secret not in listing.stdout

    server = live_server_for(env)
    body = {
        "device_id": "6f1c1b7e-1d0c-4a55-9b7e-4f7d1c2b9a10",
        "hostname": "PC-1",
        "os_version": "Windows 11",
        "agent_version": "0.1.0",
        "enrollment_secret": secret,
    }
    assert httpx.post(f"{server.base_url}/api/agent/register", json=body).status_code == 200

    revoked = run_cli(env, "enrollment", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run_cli(env, "enrollment", "list").stdout
    assert httpx.post(f"{server.base_url}/api/agent/register", json=body).status_code == 401
    assert run_cli(env, "enrollment", "revoke", "99").returncode != 0


def test_bad_duration_is_a_usage_error(env):
    result = run_cli(env, "enrollment", "add", "--name", "x", "--expires-in", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


def test_several_workers_need_postgresql(tmp_path):
    env = server_env(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", data_dir=tmp_path)
    result = run_cli(env, "serve", "--workers", "2")
    assert result.returncode == 2
    assert "needs PostgreSQL" in result.stderr


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")
def test_workers_share_one_port_on_postgresql(env, tmp_path):
    port = free_port()
    log_path = tmp_path / "workers.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "lunaris-server"), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while log_path.read_text().count('"server started"') < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_a_refused_duplicate_user_leaves_the_session_usable(database_url):
    from lunaris_server.accounts import service as accounts
    from lunaris_server.audit.service import CLI_ACTOR
    from lunaris_server.core.clock import utc_now
    from lunaris_server.core.errors import Conflict
    from lunaris_server.db import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            add = {
                "password": "long enough",
                "role": "viewer",
                "now": utc_now(),
                "actor": CLI_ACTOR,
            }
            await accounts.add_user(session, username="alice", **add)
            with pytest.raises(Conflict):
                await accounts.add_user(session, username="alice", **add)
            await accounts.add_user(session, username="bob", **add)
            await session.commit()
            names = [u.username for u in await accounts.list_users(session)]
    finally:
        await database.dispose()
    assert names == ["alice", "bob"]

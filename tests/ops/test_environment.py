"""What each LUNARIS_ENV demands, checked on the real ``lunaris-server serve`` process."""

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import BIN, free_port, server_env, start_live_server

pytestmark = pytest.mark.e2e

FIT_SECRET_KEY = "k" * 48
REFUSAL = "refusing to start with LUNARIS_ENV=prod"


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs ``serve``; a refusal exits at once (a server that starts instead times out)."""
    return subprocess.run(
        [str(BIN / "lunaris-server"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def prod_env(tmp_path: Path) -> dict[str, str]:
    """A prod configuration that is fit but for what each test spoils (on its own SQLite
    file, allowed, so a refusal can be seen to leave no database behind)."""
    return server_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        data_dir=tmp_path / "data",
        LUNARIS_ENV="prod",
        LUNARIS_SECRET_KEY=FIT_SECRET_KEY,
        LUNARIS_ALLOW_SQLITE_IN_PROD="true",
    )


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        ({"LUNARIS_SECRET_KEY": None}, "LUNARIS_SECRET_KEY is not set"),
        ({"LUNARIS_SECRET_KEY": "short"}, "LUNARIS_SECRET_KEY is too short"),
        ({"LUNARIS_ALLOW_SQLITE_IN_PROD": None}, "the database is SQLite"),
        ({"LUNARIS_ALLOW_SQLITE_IN_PROD": "false"}, "the database is SQLite"),
        ({"LUNARIS_COOKIE_SECURE": "false"}, "LUNARIS_COOKIE_SECURE is false"),
        ({"LUNARIS_METRICS_TOKEN": "guessable"}, "LUNARIS_METRICS_TOKEN is too short"),
    ],
)
def test_prod_refuses_an_unfit_configuration_before_anything_starts(
    prod_env, tmp_path, spoil, named
):
    env = dict(prod_env)
    for name, value in spoil.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    result = serve(env)
    assert result.returncode == 1, result.stderr
    assert REFUSAL in result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "prod.db").exists()  # nothing migrated, nothing served


def test_prod_names_every_problem_at_once(prod_env):
    env = {k: v for k, v in prod_env.items() if k != "LUNARIS_SECRET_KEY"}
    env.update(LUNARIS_ALLOW_SQLITE_IN_PROD="false", LUNARIS_COOKIE_SECURE="false")
    result = serve(env)
    assert result.returncode == 1
    for named in ("LUNARIS_SECRET_KEY", "SQLite", "LUNARIS_COOKIE_SECURE"):
        assert named in result.stderr


def test_prod_serves_with_secure_cookies_and_no_open_metrics(database_url, tmp_path, seeded):
    server = start_live_server(
        database_url=database_url,
        data_dir=tmp_path / "server",
        LUNARIS_ENV="prod",
        LUNARIS_SECRET_KEY=FIT_SECRET_KEY,
        LUNARIS_ALLOW_SQLITE_IN_PROD="true",
    )
    try:
        login = httpx.post(
            f"{server.base_url}/api/auth/login",
            json={"username": seeded.username, "password": seeded.password},
        )
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].lower()
        assert "; secure" in cookie
        assert "httponly" in cookie
        # No metrics token configured: prod does not offer /metrics, not even on loopback.
        assert httpx.get(f"{server.base_url}/metrics").status_code == 404
    finally:
        server.stop()
    assert "LUNARIS_FORWARDED_ALLOW_IPS is not set" in server.log()


def test_staging_starts_on_an_unfit_configuration_and_says_what_is_unfit(tmp_path):
    server = start_live_server(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'staging.db'}",
        data_dir=tmp_path / "server",
        LUNARIS_ENV="staging",
        LUNARIS_COOKIE_SECURE="false",
    )
    try:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    finally:
        server.stop()
    log = server.log()
    assert "configuration warning" in log
    assert "the database is SQLite" in log
    assert "LUNARIS_COOKIE_SECURE is false" in log


def test_dev_cookies_are_not_secure_by_default(live_server, seeded):
    login = httpx.post(
        f"{live_server.base_url}/api/auth/login",
        json={"username": seeded.username, "password": seeded.password},
    )
    assert login.status_code == 200
    assert "secure" not in login.headers["set-cookie"].lower()


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_headers_are_believed_only_from_the_configured_proxy(
    database_url, tmp_path, seeded, trusted
):
    extra = {"LUNARIS_FORWARDED_ALLOW_IPS": "127.0.0.1"} if trusted else {}
    server = start_live_server(database_url=database_url, data_dir=tmp_path / "server", **extra)
    try:
        forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        failed = httpx.post(
            f"{server.base_url}/api/auth/login",
            json={"username": seeded.username, "password": "wrong password"},
            headers=forwarded,
        )
        assert failed.status_code == 401
        audit = httpx.get(f"{server.base_url}/api/audit", headers=seeded.auth_headers).json()
    finally:
        server.stop()
    ips = {entry["ip"] for entry in audit["items"] if entry["ip"]}
    assert ips == ({"203.0.113.9"} if trusted else {"127.0.0.1"})

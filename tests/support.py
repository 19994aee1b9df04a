"""Test helpers: a settable clock, setup through the services, and the server as a process."""

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from lunaris_server.accounts import service as accounts
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.enrollment import service as enrollment
from lunaris_server.web.state import AppState

BIN = Path(sys.executable).parent
PORT_ATTEMPTS = 3


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def app_state(app: FastAPI) -> AppState:
    state: AppState = app.state.lunaris
    return state


async def create_secret(app: FastAPI, name: str = "test", **kwargs: Any) -> str:
    state = app_state(app)
    async with state.database.session() as session:
        created = await enrollment.create_secret(
            session, name=name, now=state.clock(), actor=CLI_ACTOR, **kwargs
        )
        await session.commit()
    return created.plaintext


async def create_user(
    app: FastAPI, username: str = "admin", password: str = "correct horse", role: str = "admin"
) -> None:
    state = app_state(app)
    async with state.database.session() as session:
        await accounts.add_user(
            session,
            username=username,
            password=password,
            role=role,
            now=state.clock(),
            actor=CLI_ACTOR,
        )
        await session.commit()


async def api_login(
    client: httpx.AsyncClient, username: str = "admin", password: str = "correct horse"
) -> httpx.Response:
    """Log in through the API as a script using the session cookie would: the cookie, then
    the session's CSRF token as a default header for the writes that follow."""
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token = (await client.get("/api/auth/csrf-token")).json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return response


async def create_api_token(app: FastAPI, username: str, name: str = "test") -> str:
    state = app_state(app)
    async with state.database.session() as session:
        user = await accounts.get_user_by_name(session, username=username)
        created = await accounts.add_api_token(
            session, user=user, name=name, now=state.clock(), actor=CLI_ACTOR
        )
        await session.commit()
    return created.plaintext


def register_body(secret: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "device_id": str(uuid.uuid4()),
        "hostname": "PC-0001",
        "os_version": "Windows 11 Pro 23H2 (10.0.22631)",
        "agent_version": "0.1.0",
        "enrollment_secret": secret,
    }
    body.update(overrides)
    return body


@dataclass(frozen=True)
class RegisteredDevice:
    device_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_device(
    client: httpx.AsyncClient, secret: str, **overrides: Any
) -> RegisteredDevice:
    body = register_body(secret, **overrides)
    response = await client.post("/api/agent/register", json=body)
    assert response.status_code == 200, response.text
    return RegisteredDevice(body["device_id"], response.json()["device_token"])


def update_row(package: str, installed: str = "1.0", available: str = "2.0", **extra: Any) -> dict:
    row: dict[str, Any] = {
        "package_identifier": package,
        "name": package.split(".")[-1],
        "installed_version": installed,
        "available_version": available,
        "source": "winget",
    }
    row.update(extra)
    return row


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(*, database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
    env.update(
        LUNARIS_DATABASE_URL=database_url,
        LUNARIS_DATA_DIR=str(data_dir),
        LUNARIS_SECRET_KEY="test-secret-key",
        LUNARIS_LOG_FORMAT="json",
    )
    env.update(extra)  # may replace the defaults above
    return env


def start_live_server(
    *, database_url: str, data_dir: Path, port: int | None = None, **extra_env: str
) -> LiveServer:
    """``port`` given: the same address again, as after a server restart. Otherwise a free
    port, and another one if something else took it before the server bound it (tests run
    in parallel, each picking ports)."""
    env = server_env(database_url=database_url, data_dir=data_dir, **extra_env)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen = port or free_port()
        logged = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    *(str(BIN / "lunaris-server"), "serve"),
                    *("--host", "127.0.0.1", "--port", str(chosen)),
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(process, f"http://127.0.0.1:{chosen}", env, log_path)
        try:
            wait_until_ready(server)
        except RuntimeError:
            taken = b"address already in use" in log_path.read_bytes()[logged:]
            if port is None and taken and attempt < PORT_ATTEMPTS:
                continue
            raise
        return server
    raise AssertionError("unreachable: the last attempt returns or raises")


def wait_until_ready(server: LiveServer, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready after {timeout_s}s:\n{server.log()}")


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lunaris-server"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class Seeded:
    enrollment_secret: str
    api_token: str
    username: str = "admin"
    password: str = "correct horse"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


async def seed_database(database_url: str) -> Seeded:
    """An admin (password and API token) and an enrollment secret, written through the
    services, for tests that then drive real server processes."""
    from lunaris_server.core.clock import utc_now
    from lunaris_server.db import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            user = await accounts.add_user(
                session,
                username="admin",
                password="correct horse",
                role="admin",
                now=utc_now(),
                actor=CLI_ACTOR,
            )
            token = await accounts.add_api_token(
                session, user=user, name="tests", now=utc_now(), actor=CLI_ACTOR
            )
            secret = await enrollment.create_secret(
                session, name="tests", now=utc_now(), actor=CLI_ACTOR
            )
            await session.commit()
    finally:
        await database.dispose()
    return Seeded(enrollment_secret=secret.plaintext, api_token=token.plaintext)


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://", 1) + path


class RecordingApp:
    """An ASGI application in front of ``app`` that records the path of each request reaching
    it: tells whether a middleware answered a request itself or passed it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)

"""Shared fixtures: a clean database per test (SQLite, or PostgreSQL when
``LUNARIS_TEST_DATABASE_URL`` is set), the app in-process, the real server as a process, and
one headless Chromium per test session. Helpers live in plain modules (tests/support.py,
tests/databases.py, tests/browser.py, tests/<area>/helpers.py), never here."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lunaris_server.app import create_app
from lunaris_server.core.settings import Settings
from lunaris_server.db.migrate import upgrade_to_head
from tests.browser import launch_chromium
from tests.databases import (
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    fresh_database,
)
from tests.support import FakeClock, LiveServer, Seeded, seed_database, start_live_server

pytest_plugins = ["tests.process_guard"]  # a test that starts a process must be marked e2e


@pytest.fixture(scope="session")
def backend() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


@pytest.fixture
async def empty_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables at all (for migration tests)."""
    if POSTGRES_URL:
        url = await create_postgres_database(POSTGRES_URL)
        yield url
        await drop_postgres_database(POSTGRES_URL, url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="session")
async def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Migrated once per run: a PostgreSQL database, or an SQLite file copied per test."""
    if POSTGRES_URL:
        url = await create_postgres_database(POSTGRES_URL)
        await asyncio.to_thread(upgrade_to_head, url)
        yield url
        await drop_postgres_database(POSTGRES_URL, url)
    else:
        path = tmp_path_factory.mktemp("template") / "lunaris.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade_to_head, url)
        yield url


@pytest.fixture
async def database_url(_migrated_template: str, tmp_path: Path) -> str:
    """A migrated database with no rows."""
    return await fresh_database(_migrated_template, tmp_path)


@pytest.fixture
def another_database(_migrated_template: str, tmp_path: Path) -> Callable[[str], Awaitable[str]]:
    """``await another_database(name)``: an empty database again, for a test that builds two
    worlds one after the other (on PostgreSQL the same database, emptied once the first
    world is done with it)."""

    async def make(name: str) -> str:
        return await fresh_database(_migrated_template, tmp_path / name)

    return make


@pytest.fixture
async def seeded(database_url: str) -> Seeded:
    """An admin (password and API token) and an enrollment secret in the test database."""
    return await seed_database(database_url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        heartbeat_interval_s=60,
        scan_interval_s=3600,
        # Tests run the scheduler's ticks themselves (policies.scheduler.tick_once), one a
        # minute of the injected clock.
        scheduler_enabled=False,
    )


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The real ``lunaris-server serve`` process on a free loopback port."""
    server = start_live_server(database_url=database_url, data_dir=tmp_path / "server-data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_server(database_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Starts real server processes on the test database: ``start_server(LUNARIS_X="1")``.
    Several may run at once (replicas); all are stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(**extra_env: str) -> LiveServer:
        data_dir = tmp_path / f"server-{len(started)}"
        server = start_live_server(database_url=database_url, data_dir=data_dir, **extra_env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_server_for(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], LiveServer]]:
    """Starts the real server with a given environment (e.g. the one a CLI test used)."""
    started: list[LiveServer] = []

    def start(env: dict[str, str]) -> LiveServer:
        server = start_live_server(
            database_url=env["LUNARIS_DATABASE_URL"], data_dir=Path(env["LUNARIS_DATA_DIR"])
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    """One headless Chromium for the whole session; each test opens its own context."""
    async with launch_chromium() as browser:
        yield browser

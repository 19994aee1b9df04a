"""Fixtures of the remote-action tests: an admin's and a viewer's API tokens, the console
events the process announces, the SQL it sends, and a real server process with a real agent
process (heartbeating every second) for the end-to-end tests. Helpers:
tests/commands/helpers.py."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.agent_process import AgentProcess
from tests.commands.helpers import Events, Statements, Tokens
from tests.console.helpers import login
from tests.support import (
    LiveServer,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    start_live_server,
)


@pytest.fixture
async def tokens(app: FastAPI) -> Tokens:
    await create_user(app, "admin")
    await create_user(app, "viewer", "viewer password", role="viewer")
    admin = await create_api_token(app, "admin")
    viewer = await create_api_token(app, "viewer")
    return Tokens(
        admin={"Authorization": f"Bearer {admin}"}, viewer={"Authorization": f"Bearer {viewer}"}
    )


@pytest.fixture
async def console(app: FastAPI, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The console, in-process, as the viewer of ``tokens`` sees it (signed in)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await login(http, "viewer", "viewer password")).status_code == 303
        yield http


@pytest.fixture
async def secret(app: FastAPI) -> str:
    return await create_secret(app)


@pytest.fixture
async def events(app: FastAPI) -> AsyncIterator[Events]:
    hub = app_state(app).realtime.console
    client = hub.connect()
    yield Events(client)
    hub.disconnect(client)


@pytest.fixture
async def statements(app: FastAPI) -> AsyncIterator[Statements]:
    engine = app_state(app).database.engine.sync_engine
    recorder = Statements()
    event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(engine, "before_cursor_execute", recorder)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_live_server(
        database_url=database_url,
        data_dir=tmp_path / "server",
        LUNARIS_HEARTBEAT_INTERVAL_S="1",
    )
    yield live
    live.stop()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path / "agent" / "config.json", tmp_path)
    yield process
    process.kill()

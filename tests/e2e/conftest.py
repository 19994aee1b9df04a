"""Fixtures of the end-to-end tests: a real agent process, and real server processes on one
data directory."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agent_process import AgentProcess
from tests.support import LiveServer, start_live_server


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path / "agent" / "config.json", tmp_path)
    yield process
    process.kill()


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(port: int | None = None) -> LiveServer:
        server = start_live_server(
            database_url=database_url,
            data_dir=tmp_path / "server",
            port=port,
            LUNARIS_HEARTBEAT_INTERVAL_S="1",
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

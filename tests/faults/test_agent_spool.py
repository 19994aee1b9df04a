"""A real agent process whose spool cannot be written (its folder's place taken by a file, or a
full disk): it keeps running, says plainly which path failed and why (in its log and in
`lunaris-agent status`), keeps the report in memory until the server takes it, and uses the
spool again once it can.

Both faults work whoever runs the tests: root can write into a read-only folder, but not
into a regular file or onto a full disk. The full disk is a tiny tmpfs, which only root can
mount; elsewhere that case is skipped.
"""

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_process import AgentProcess, wait_until
from tests.support import LiveServer, Seeded, free_port, seed_database

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent.parent / "agent" / "winget_samples"
STAND_IN = """\
import sys
from pathlib import Path

sys.stdout.buffer.write((Path(__file__).parent / "winget-output.txt").read_bytes())
"""


@dataclass
class BrokenSpool:
    spool_dir: Path
    cause: str
    """How the operating system words the failure."""
    repair: Callable[[], None]


def blocked_by_a_file(tmp_path: Path) -> Iterator[BrokenSpool]:
    blocker = tmp_path / "agent-data"
    blocker.write_text("a file where the spool's folder should be\n")
    yield BrokenSpool(blocker / "spool", "Not a directory", blocker.unlink)


def on_a_full_disk(tmp_path: Path) -> Iterator[BrokenSpool]:
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("a full disk is a tiny tmpfs here, and mounting one needs root")
    try:
        (disk / "spool").mkdir()
        filler = disk / "filler"
        with pytest.raises(OSError, match="No space left"):
            filler.write_bytes(b"\0" * 128 * 1024)  # fills the disk up
        yield BrokenSpool(disk / "spool", "No space left on device", filler.unlink)
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


@pytest.fixture(params=["blocked by a file", "on a full disk"])
def broken_spool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokenSpool]:
    make = blocked_by_a_file if request.param == "blocked by a file" else on_a_full_disk
    yield from make(tmp_path)


class Winget:
    """Stands in for winget.exe: prints a recorded sample."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.path = directory / "winget.py"
        self.path.write_text(STAND_IN)

    def prints(self, sample: str) -> list[str]:
        """Sets the output; returns the ids the server will list for it."""
        (self.path.parent / "winget-output.txt").write_bytes(
            (SAMPLES / f"{sample}.txt").read_bytes()
        )
        expected = json.loads((SAMPLES / f"{sample}.expected.json").read_text(encoding="utf-8"))
        return sorted({row["package_identifier"] for row in expected["updates"]})


def spool_errors(agent: AgentProcess, spool_dir: Path) -> list[str]:
    """The error lines of the agent's log that name the spool."""
    log_file = agent.config.parent / "logs" / "agent.log"
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    entries = [json.loads(line) for line in lines]
    return [
        entry["message"]
        for entry in entries
        if entry["level"] == "error" and str(spool_dir) in entry["message"]
    ]


def status_lines(agent: AgentProcess) -> list[str]:
    status = agent.cli("status")
    assert status.returncode == 0, status.stderr
    return status.stdout.splitlines()


def console_get(server: LiveServer, seeded: Seeded, path: str) -> Any:
    response = httpx.get(f"{server.base_url}{path}", headers=seeded.auth_headers, timeout=5)
    response.raise_for_status()
    return response.json()


def test_an_unwritable_spool_is_reported_and_loses_no_report(
    broken_spool, database_url, servers, tmp_path
):
    seeded = asyncio.run(seed_database(database_url))
    port = free_port()
    winget = Winget(tmp_path / "winget")
    first_ids = winget.prints("001-upgrade-basic")
    agent = AgentProcess(tmp_path / "agent" / "config.json", tmp_path)
    device_id = agent.configure(
        api_url=f"http://127.0.0.1:{port}/api",
        enrollment_secret=seeded.enrollment_secret,
        winget_path=winget.path,
    )
    config = json.loads(agent.config.read_text())
    agent.config.write_text(json.dumps(config | {"spool_dir": str(broken_spool.spool_dir)}))

    try:
        # The server is not up yet: the report can be neither spooled nor sent.
        agent.start()
        wait_until(
            lambda: spool_errors(agent, broken_spool.spool_dir),
            "the agent to say it cannot write its spool",
            timeout_s=30,
        )
        [error] = spool_errors(agent, broken_spool.spool_dir)
        assert broken_spool.cause in error
        assert agent.process is not None
        assert agent.process.poll() is None
        spool_status = [line for line in status_lines(agent) if line.startswith("spool error:")]
        assert len(spool_status) == 1
        assert str(broken_spool.spool_dir) in spool_status[0]
        assert broken_spool.cause in spool_status[0]

        # The report was kept in memory: it arrives once the server is there.
        server = servers(database_url, port=port, LUNARIS_HEARTBEAT_INTERVAL_S="1")
        wait_until(
            lambda: device_ids(server, seeded, device_id) == first_ids,
            "the report kept in memory to arrive",
            timeout_s=30,
        )
        seen = console_get(server, seeded, f"/api/devices/{device_id}")["last_seen_at"]
        wait_until(
            lambda: console_get(server, seeded, f"/api/devices/{device_id}")["last_seen_at"] > seen,
            "heartbeats to go on",
            timeout_s=30,
        )
        assert agent.process.poll() is None
        # Said once, not at every heartbeat.
        assert len(spool_errors(agent, broken_spool.spool_dir)) == 1
        assert "Traceback" not in agent.log()

        # Writable again: the next report goes through the spool and arrives.
        broken_spool.repair()
        assert agent.stop() == 0
        second_ids = winget.prints("006-upgrade-explicit-targeting-second-table")
        agent.start()
        wait_until(
            lambda: device_ids(server, seeded, device_id) == second_ids,
            "the report after the repair to arrive",
            timeout_s=30,
        )
        wait_until(
            lambda: not any(line.startswith("spool error:") for line in status_lines(agent)),
            "the status to stop showing the spool error",
            timeout_s=30,
        )
        assert broken_spool.spool_dir.is_dir()
        assert "spool:         0 unsent" in "\n".join(status_lines(agent))
        assert agent.stop() == 0
    finally:
        agent.kill()


def device_ids(server: LiveServer, seeded: Seeded, device_id: str) -> list[str]:
    rows = console_get(server, seeded, f"/api/devices/{device_id}/updates")["items"]
    return sorted(row["package_identifier"] for row in rows)

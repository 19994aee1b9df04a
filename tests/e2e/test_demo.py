"""The quick start: ``lunaris-server demo`` serves, prints a login, and simulated agents fill
the fleet through the real agent API. Its terminal shows the banner and a summary line now
and then; the log, request lines included, is in the file the banner names."""

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import BIN, server_env

pytestmark = pytest.mark.e2e

SUMMARY = re.compile(
    r"\d\d:\d\d:\d\d  devices: (\d+) online, (\d+) offline · \d+ heartbeats/min · "
    r"(\d+) reports since start · commands: none yet"
)


def wait_for_line(
    process: subprocess.Popen[str], lines: list[str], done: str, timeout_s: float = 30
) -> str:
    """Reads the demo's terminal into ``lines`` until a line matches ``done``."""
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(done, line):
            return line
    raise AssertionError(f"no line matching {done!r} from the demo:\n" + "".join(lines))


def read_banner(lines: list[str]) -> dict[str, str]:
    text = "".join(lines)
    console = re.search(r"Console:\s+(\S+)/", text)
    login = re.search(r"Login:\s+(\S+) / (\S+)", text)
    log = re.search(r"Log:\s+(\S+)", text)
    assert console, text
    assert login, text
    assert log, text
    return {"url": console[1], "username": login[1], "password": login[2], "log": log[1]}


def test_demo_serves_and_fills_the_fleet_through_the_agent_api(database_url, tmp_path: Path):
    env = server_env(database_url=database_url, data_dir=tmp_path / "data")
    env.pop("LUNARIS_LOG_FORMAT")
    demo = [str(BIN / "lunaris-server"), "demo", "--port", "0", "--devices", "6"]
    process = subprocess.Popen(
        [*demo, "--summary-every", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    terminal: list[str] = []
    try:
        wait_for_line(process, terminal, r"Stop with Ctrl\+C")
        banner = read_banner(terminal)
        with httpx.Client(base_url=banner["url"], timeout=10) as client:
            login = {"username": banner["username"], "password": banner["password"]}
            assert client.post("/api/auth/login", json=login).status_code == 200
            deadline = time.monotonic() + 60
            devices: dict = {}
            while time.monotonic() < deadline:
                devices = client.get("/api/devices", params={"has_updates": "true"}).json()
                if devices["total"] >= 5:
                    break
                time.sleep(0.5)
            # Six devices, of which a scan error may leave one without a list yet.
            assert devices["total"] >= 5, devices
            assert client.get("/api/devices").json()["total"] == 6
            fleet = client.get("/api/updates").json()
            assert fleet["total"] > 0
            # They arrived through registration, as real agents do.
            audit = client.get("/api/audit", params={"action": "device.register"}).json()
            assert audit["total"] == 6
        # The summary catches up: every device online, five reports or more counted.
        summary = r"devices: 6 online, 0 offline .* (\d\d+|[5-9]) reports since start"
        wait_for_line(process, terminal, summary, timeout_s=10)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.stdout is not None
    with process.stdout:  # the pipe is ours to close
        terminal += process.stdout.readlines()
    # The terminal: the banner (nine lines), then summary lines only.
    banner_end = next(n for n, line in enumerate(terminal) if "Stop with Ctrl+C" in line) + 2
    assert banner_end <= 10, terminal
    assert [line for line in terminal[banner_end:] if not SUMMARY.fullmatch(line.strip())] == []
    # The log file holds the rest: the server's lines, requests, the simulators' own.
    log = Path(banner["log"]).read_text()
    assert Path(banner["log"]) == (tmp_path / "data" / "demo.log").resolve()
    assert "path=/api/agent/register" in log
    assert "path=/api/agent/update-report" in log
    assert re.search(r"lunaris_agent\.runtime[.\w]*: registered with", log), "no agent line"
    assert "Uvicorn running on" in log
    # The simulators stop with the server: none is left running.
    survivors = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data" / "demo-agents")], capture_output=True, check=False
    )
    assert survivors.stdout == b""

"""The quick start: ``lunaris-server demo`` serves, prints a login, and simulated agents fill
the fleet through the real agent API."""

import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import BIN, server_env


def wait_for_banner(process: subprocess.Popen[str], timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Stop with Ctrl+C" in line:
            text = "".join(lines)
            console = re.search(r"Console:\s+(\S+)/", text)
            login = re.search(r"Login:\s+(\S+) / (\S+)", text)
            assert console, text
            assert login, text
            return {"url": console[1], "username": login[1], "password": login[2]}
    raise AssertionError("no banner from the demo:\n" + "".join(lines))


def test_demo_serves_and_fills_the_fleet_through_the_agent_api(database_url, tmp_path: Path):
    env = server_env(database_url=database_url, data_dir=tmp_path / "data")
    env.pop("LUNARIS_LOG_FORMAT")
    process = subprocess.Popen(
        [str(BIN / "lunaris-server"), "demo", "--port", "0", "--devices", "6"],
        env={**env, "LUNARIS_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = wait_for_banner(process)
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
    finally:
        process.terminate()
        process.wait(timeout=20)
    # The simulators stop with the server: none is left running.
    survivors = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data" / "demo-agents")], capture_output=True, check=False
    )
    assert survivors.stdout == b""

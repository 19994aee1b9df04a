"""The real agent process against the real server process, with a winget stand-in that prints
recorded winget output: the device appears with the right updates, a report made while the
server is down arrives when it is back, a revoked device stops with a clear error, and the
tags in the agent's config are the device's agent tags."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_process import AgentProcess, wait_until
from tests.support import LiveServer, Seeded

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent.parent / "agent" / "winget_samples"
STAND_IN = """\
import sys
from pathlib import Path

here = Path(__file__).parent
sys.stdout.buffer.write((here / "winget-output.txt").read_bytes())
sys.exit(int((here / "winget-exit-code.txt").read_text()))
"""


def expected_ids(sample: str) -> list[str]:
    expected = json.loads((SAMPLES / f"{sample}.expected.json").read_text(encoding="utf-8"))
    # Two installs of one version are one row on the server (with an instance count).
    return sorted({row["package_identifier"] for row in expected["updates"]})


class Winget:
    """A stand-in for winget.exe: prints whichever recorded sample the test chose last."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.path = directory / "winget.py"
        self.path.write_text(STAND_IN, encoding="utf-8")
        self.prints("001-upgrade-basic")

    def prints(self, sample: str, exit_code: int = 0) -> None:
        output = (SAMPLES / f"{sample}.txt").read_bytes()
        (self.path.parent / "winget-output.txt").write_bytes(output)
        (self.path.parent / "winget-exit-code.txt").write_text(str(exit_code))


def console_get(server: LiveServer, seeded: Seeded, path: str) -> Any:
    response = httpx.get(f"{server.base_url}{path}", headers=seeded.auth_headers, timeout=5)
    response.raise_for_status()
    return response.json()


def device_update_ids(server: LiveServer, seeded: Seeded, device_id: str) -> list[str]:
    rows = console_get(server, seeded, f"/api/devices/{device_id}/updates")["items"]
    return sorted(row["package_identifier"] for row in rows)


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    wait_until(condition, what, timeout_s=timeout_s)


def configure(agent: AgentProcess, server: LiveServer, secret: str, winget: Winget) -> str:
    return agent.configure(
        api_url=f"{server.base_url}/api", enrollment_secret=secret, winget_path=winget.path
    )


def test_the_agent_reports_what_winget_lists_and_keeps_its_identity(
    agent, servers, seeded, tmp_path
):
    server = servers()
    winget = Winget(tmp_path / "winget")
    device_id = configure(agent, server, seeded.enrollment_secret, winget)

    once = agent.cli("once")
    assert once.returncode == 0, once.stderr

    config = json.loads(agent.config.read_text())
    assert "enrollment_secret" not in config
    assert config["device_id"] == device_id
    if sys.platform != "win32":
        assert agent.config.stat().st_mode & 0o077 == 0
    assert device_update_ids(server, seeded, device_id) == expected_ids("001-upgrade-basic")
    events = console_get(server, seeded, f"/api/devices/{device_id}/events")["items"]
    assert {event["kind"] for event in events} == {"detected"}

    # A winget failure is reported as a scan error; the updates already known stay.
    winget.prints("039-source-agreement-shown-then-0x8a15000f", exit_code=1)
    assert agent.cli("once").returncode == 0
    device = console_get(server, seeded, f"/api/devices/{device_id}")
    assert device["scan_error"]["code"].casefold() == "0x8a15000f"
    assert device_update_ids(server, seeded, device_id) == expected_ids("001-upgrade-basic")

    status = agent.cli("status")
    assert status.returncode == 0
    assert f"device id:     {device_id}" in status.stdout
    assert "enrollment:    registered" in status.stdout
    assert "0 unsent" in status.stdout
    log_lines = (agent.config.parent / "logs" / "agent.log").read_text().splitlines()
    assert any(json.loads(line)["message"].startswith("registered with") for line in log_lines)
    assert seeded.enrollment_secret not in (agent.config.parent / "logs" / "agent.log").read_text()


def test_a_report_made_while_the_server_is_down_arrives_when_it_is_back(
    agent, servers, seeded, tmp_path
):
    server = servers()
    winget = Winget(tmp_path / "winget")
    device_id = configure(agent, server, seeded.enrollment_secret, winget)
    agent.start()
    wait_for(
        lambda: device_update_ids(server, seeded, device_id) == expected_ids("001-upgrade-basic"),
        "the first report",
    )

    # The server goes away; the agent restarts meanwhile and scans something new.
    port = int(server.base_url.rsplit(":", 1)[1])
    server.stop()
    assert agent.stop() == 0
    winget.prints("006-upgrade-explicit-targeting-second-table")
    agent.start()
    spooled = agent.config.parent / "spool" / "report.json"
    wait_for(spooled.exists, "the report to be spooled")
    assert agent.process is not None
    assert agent.process.poll() is None  # still running, retrying

    back = servers(port=port)
    wait_for(
        lambda: (
            device_update_ids(back, seeded, device_id)
            == expected_ids("006-upgrade-explicit-targeting-second-table")
        ),
        "the spooled report to arrive",
    )
    wait_for(lambda: not spooled.exists(), "the spool to empty")
    # Said by the heartbeat loop when it gets through (the inventory's sending may have
    # carried the report first).
    wait_for(lambda: "server reachable again" in agent.log(), "the agent to say it is back")
    assert agent.stop() == 0


def test_a_revoked_device_stops_with_a_clear_error(agent, servers, seeded, tmp_path):
    server = servers()
    winget = Winget(tmp_path / "winget")
    device_id = configure(agent, server, seeded.enrollment_secret, winget)
    agent.start()
    wait_for(lambda: console_get(server, seeded, f"/api/devices/{device_id}"), "registration")

    revoked = httpx.post(
        f"{server.base_url}/api/devices/{device_id}/revoke", headers=seeded.auth_headers
    )
    assert revoked.status_code == 200, revoked.text

    assert agent.process is not None
    assert agent.process.wait(timeout=20) == 3
    assert "no longer accepts this device's token" in agent.log()


def test_the_tags_in_the_agents_config_are_the_devices_agent_tags(agent, servers, seeded, tmp_path):
    server = servers()
    winget = Winget(tmp_path / "winget")
    api_url = f"{server.base_url}/api"
    device_id = agent.configure(
        api_url=api_url,
        enrollment_secret=seeded.enrollment_secret,
        winget_path=winget.path,
        tags="Kiosk, berlin",
    )
    assert agent.cli("once").returncode == 0
    device = console_get(server, seeded, f"/api/devices/{device_id}")
    assert device["agent_tags"] == ["berlin", "kiosk"]  # from the registration and the report

    # An admin's tags are another kind: the agent's reports leave them alone.
    admin_tags = httpx.put(
        f"{server.base_url}/api/devices/{device_id}/tags",
        json={"tags": ["vip"]},
        headers=seeded.auth_headers,
        timeout=5,
    )
    assert admin_tags.status_code == 200, admin_tags.text

    for given, expected in [("finance", ["finance"]), ("", [])]:
        configured = agent.cli("configure", "--api-url", api_url, "--tags", given)
        assert configured.returncode == 0, configured.stderr
        assert agent.cli("once").returncode == 0
        device = console_get(server, seeded, f"/api/devices/{device_id}")
        assert (device["agent_tags"], device["tags"]) == (expected, ["vip"])
    assert "tags" not in json.loads(agent.config.read_text())

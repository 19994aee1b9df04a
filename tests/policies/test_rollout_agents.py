"""A two-ring policy rolls a package out across real agent processes, against a real server
process whose scheduler ticks every second: the pilot PC (an agent tag) gets the version
first, installs it exactly, and only then does the rest of the fleet; an ignored package is
never installed, and a pinned one never goes past its constraint."""

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent_process import AgentProcess, wait_until
from tests.support import LiveServer, Seeded
from tests.winget_stand_in import Winget, package

pytestmark = pytest.mark.e2e


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[dict[str, AgentProcess]]:
    made = {
        name: AgentProcess(tmp_path / name / "config.json", tmp_path / name)
        for name in ("pilot", "office")
    }
    yield made
    for agent in made.values():
        agent.kill()


def api(server: LiveServer, seeded: Seeded, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, f"{server.base_url}{path}", headers=seeded.auth_headers, timeout=10, **kwargs
    )
    assert response.is_success, response.text
    return response.json() if response.content else None


def stand_in(directory: Path) -> Winget:
    return Winget(
        directory,
        [
            package("Zoom.Zoom", installed="6.2.0", available="6.3.0"),
            package("Oracle.JDK.8", installed="8.0.401", available="21.0.5"),
            package("Vendor.Ignored"),
        ],
    )


def test_a_two_ring_policy_rolls_out_to_the_pilot_then_the_rest(
    start_server, seeded, agents, tmp_path
):
    server = start_server(LUNARIS_HEARTBEAT_INTERVAL_S="1", LUNARIS_SCHEDULER_INTERVAL_S="1")
    for rule in (
        {"package": "Zoom.Zoom", "action": "auto"},
        {"package": "Oracle.JDK.*", "action": "auto", "version_constraint": "<9"},
        {"package": "Vendor.*", "action": "ignore"},
    ):
        api(server, seeded, "POST", "/api/package-rules", json=rule)
    pilot_group = {"name": "Pilot", "tags": ["pilot"], "tag_source": "agent"}
    pilot = api(server, seeded, "POST", "/api/groups", json=pilot_group)
    everyone = api(
        server, seeded, "POST", "/api/groups", json={"name": "All", "hostname_glob": "*"}
    )
    rings = [
        {"group_id": pilot["id"], "min_devices": 1, "min_success_percent": 100},
        {"group_id": everyone["id"]},
    ]
    policy = api(server, seeded, "POST", "/api/policies", json={"name": "Zoom", "rings": rings})

    wingets = {name: stand_in(tmp_path / f"winget-{name}") for name in agents}
    devices = {}
    for name, agent in agents.items():
        devices[name] = agent.configure(
            api_url=f"{server.base_url}/api",
            enrollment_secret=seeded.enrollment_secret,
            winget_path=wingets[name].path,
            tags="pilot" if name == "pilot" else None,
        )
    for agent in agents.values():
        agent.start()

    def installed(name: str) -> list[str]:
        return wingets[name].versions_asked()

    wait_until(
        lambda: installed("pilot") == ["Zoom.Zoom 6.3.0"], "the pilot's install", timeout_s=60
    )
    wait_until(lambda: installed("office") == ["Zoom.Zoom 6.3.0"], "the office's", timeout_s=60)

    # The office PC was queued only once the pilot had installed the version.
    commands = api(server, seeded, "GET", "/api/commands?limit=100")["items"]
    by_device = {c["device_id"]: c for c in commands if c["packages"] == ["Zoom.Zoom"]}
    assert set(by_device) == set(devices.values())
    first, second = by_device[devices["pilot"]], by_device[devices["office"]]
    assert (first["created_by"], second["created_by"]) == (f"policy:{policy['id']}",) * 2
    assert datetime.fromisoformat(second["created_at"]) >= datetime.fromisoformat(
        first["finished_at"]
    )
    assert first["versions"] == second["versions"] == {"Zoom.Zoom": "6.3.0"}
    progress = api(server, seeded, "GET", f"/api/policies/{policy['id']}/rollouts")
    zoom = next(v for v in progress if v["package_identifier"] == "Zoom.Zoom")
    assert zoom["reached_ring"] == 1

    # More ticks: the ignored package and the JDK held at <9 are never installed; both PCs
    # report them waiting still.
    def waiting(name: str) -> list[str]:
        rows = api(server, seeded, "GET", f"/api/devices/{devices[name]}/updates")["items"]
        return sorted(row["package_identifier"] for row in rows)

    left = ["Oracle.JDK.8", "Vendor.Ignored"]
    for name in agents:
        wait_until(lambda name=name: waiting(name) == left, "the report after", timeout_s=30)
    time.sleep(3)  # three more ticks
    assert installed("pilot") == installed("office") == ["Zoom.Zoom 6.3.0"]
    for agent in agents.values():
        assert agent.stop() == 0

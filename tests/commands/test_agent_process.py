"""A command from the console API runs on the real agent process against the real server: a
winget stand-in that keeps its own list of installed versions succeeds, fails or asks for a
reboot per package; the results, the history and the device's shrunken list of updates come
back. Also: an agent that was not running when the command was queued runs it from its next
heartbeat (``lunaris-agent once``), and a command delivered twice (socket and heartbeats) is
installed once."""

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.agent_process import AgentProcess, wait_until
from tests.support import LiveServer, Seeded
from tests.winget_stand_in import Winget, package

pytestmark = pytest.mark.e2e


def console(server: LiveServer, seeded: Seeded, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, f"{server.base_url}{path}", headers=seeded.auth_headers, timeout=10, **kwargs
    )
    assert response.is_success, response.text
    return response.json()


def waiting_ids(server: LiveServer, seeded: Seeded, device_id: str) -> list[str]:
    rows = console(server, seeded, "GET", f"/api/devices/{device_id}/updates")["items"]
    return sorted(row["package_identifier"] for row in rows)


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    wait_until(condition, what, timeout_s=timeout_s)


def configure(agent: AgentProcess, server: LiveServer, seeded: Seeded, winget: Winget) -> str:
    return agent.configure(
        api_url=f"{server.base_url}/api",
        enrollment_secret=seeded.enrollment_secret,
        winget_path=winget.path,
    )


def test_a_command_runs_on_the_agent_and_the_updates_shrink(agent, server, seeded, tmp_path):
    winget = Winget(
        tmp_path / "winget",
        [
            package("Git.Git"),
            package("Vendor.Broken", "fail"),
            package("Vendor.NeedsReboot", "reboot"),
            package("Mozilla.Firefox"),
        ],
    )
    device_id = configure(agent, server, seeded, winget)
    agent.start()
    try:
        wait_for(lambda: len(waiting_ids(server, seeded, device_id)) == 4, "the first report")
        wait_for(
            lambda: console(server, seeded, "GET", f"/api/devices/{device_id}")["connected"],
            "the agent's socket",
        )
        created = console(
            server,
            seeded,
            "POST",
            f"/api/devices/{device_id}/commands",
            json={
                "kind": "RUN_UPDATES",
                "packages": ["Git.Git", "Vendor.Broken", "Vendor.NeedsReboot"],
            },
        )
        command_path = f"/api/commands/{created['id']}"
        # Two of three installed: partial on the server, though the agent says failed (and
        # reads the server's answer, "failed", as it always has).
        wait_for(
            lambda: console(server, seeded, "GET", command_path)["status"] == "partial",
            f"the command to finish\n{agent.log()}",
        )
        wait_for(
            lambda: waiting_ids(server, seeded, device_id) == ["Mozilla.Firefox", "Vendor.Broken"],
            "the report after the command",
        )
        # Pushed over the socket and handed over by heartbeats until it started: run once.
        time.sleep(2)
        assert winget.installs() == ["Git.Git", "Vendor.Broken", "Vendor.NeedsReboot"]
    finally:
        assert agent.stop() == 0

    shown = console(server, seeded, "GET", command_path)
    outcomes = [
        (r["package_identifier"], r["outcome"], r["succeeded"], r["reboot_required"])
        for r in shown["results"]
    ]
    assert outcomes == [
        ("Git.Git", "success", True, False),
        ("Vendor.Broken", "installer_failed", False, False),
        ("Vendor.NeedsReboot", "success_reboot_required", True, True),
    ]
    assert shown["results"][1]["installer_exit_code"] == 1603
    assert None not in (shown["sent_at"], shown["started_at"], shown["finished_at"])

    history = console(server, seeded, "GET", f"/api/devices/{device_id}/events?limit=100")
    by_command = [
        (e["kind"], e["package_identifier"])
        for e in reversed(history["items"])
        if e["command_id"] == created["id"]
    ]
    assert by_command == [
        ("install_started", "Git.Git"),
        ("install_succeeded", "Git.Git"),
        ("install_started", "Vendor.Broken"),
        ("install_failed", "Vendor.Broken"),
        ("install_started", "Vendor.NeedsReboot"),
        ("install_succeeded", "Vendor.NeedsReboot"),
    ]
    resolved = {e["package_identifier"] for e in history["items"] if e["kind"] == "resolved"}
    assert resolved == {"Git.Git", "Vendor.NeedsReboot"}


def test_a_command_queued_while_the_agent_was_away_runs_at_its_next_heartbeat(
    agent, server, seeded, tmp_path
):
    winget = Winget(tmp_path / "winget", [package("Git.Git"), package("7zip.7zip")])
    device_id = configure(agent, server, seeded, winget)
    assert agent.cli("once").returncode == 0
    assert waiting_ids(server, seeded, device_id) == ["7zip.7zip", "Git.Git"]

    created = console(
        server,
        seeded,
        "POST",
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
    )
    assert created["status"] == "queued"
    once = agent.cli("once")
    assert once.returncode == 0, once.stderr
    shown = console(server, seeded, "GET", f"/api/commands/{created['id']}")
    assert shown["status"] == "succeeded"
    assert sorted(r["package_identifier"] for r in shown["results"]) == ["7zip.7zip", "Git.Git"]
    assert waiting_ids(server, seeded, device_id) == []
    # The next run is handed nothing (the command finished) and installs nothing again.
    assert agent.cli("once").returncode == 0
    assert sorted(winget.installs()) == ["7zip.7zip", "Git.Git"]


def test_the_agent_installs_the_version_queued_not_one_published_since(
    agent, server, seeded, tmp_path
):
    winget = Winget(tmp_path / "winget", [package("Git.Git"), package("Vendor.Pulled")])
    device_id = configure(agent, server, seeded, winget)
    assert agent.cli("once").returncode == 0  # reports both at 2.0.0
    created = console(
        server,
        seeded,
        "POST",
        f"/api/devices/{device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Git.Git", "Vendor.Pulled"]},
    )
    assert created["versions"] == {"Git.Git": "2.0.0", "Vendor.Pulled": "2.0.0"}
    # Before the agent runs it, Git 3.0.0 is published, and Vendor pulls its 2.0.0.
    winget.publish("Git.Git", newest="3.0.0", in_source=["2.0.0", "3.0.0"])
    winget.publish("Vendor.Pulled", newest="2.0.1", in_source=["2.0.1"])
    once = agent.cli("once")
    assert once.returncode == 0, once.stderr

    assert winget.versions_asked() == ["Git.Git 2.0.0", "Vendor.Pulled 2.0.0"]
    shown = console(server, seeded, "GET", f"/api/commands/{created['id']}")
    outcomes = {r["package_identifier"]: (r["outcome"], r["succeeded"]) for r in shown["results"]}
    assert outcomes == {
        "Git.Git": ("success", True),
        "Vendor.Pulled": ("version_unavailable", False),
    }
    assert shown["status"] == "partial"
    device = console(server, seeded, "GET", f"/api/devices/{device_id}")
    assert device["capabilities"] == ["exact_versions", "window_end"]


def installed_versions(server: LiveServer, seeded: Seeded, device_id: str) -> dict[str, str]:
    body = console(server, seeded, "GET", f"/api/devices/{device_id}/software")
    return {row["package_identifier"]: row["version"] for row in body["items"]}


def test_the_agent_reports_what_is_installed_and_again_after_an_install(
    agent, server, seeded, tmp_path
):
    winget = Winget(tmp_path / "winget", [package("Git.Git"), package("Mozilla.Firefox")])
    device_id = configure(agent, server, seeded, winget)
    agent.start()
    try:
        wait_for(
            lambda: (
                installed_versions(server, seeded, device_id)
                == {"Git.Git": "1.0.0", "Mozilla.Firefox": "1.0.0"}
            ),
            f"the first inventory\n{agent.log()}",
        )
        wait_for(
            lambda: console(server, seeded, "GET", f"/api/devices/{device_id}")["connected"],
            "the agent's socket",
        )
        console(
            server,
            seeded,
            "POST",
            f"/api/devices/{device_id}/commands",
            json={"kind": "RUN_UPDATES", "packages": ["Git.Git"]},
        )
        # The install is followed by an inventory: the new version, and its history event.
        wait_for(
            lambda: installed_versions(server, seeded, device_id).get("Git.Git") == "2.0.0",
            f"the inventory after the install\n{agent.log()}",
        )
        events = console(server, seeded, "GET", f"/api/devices/{device_id}/events")["items"]
        assert any(
            (e["kind"], e["package_identifier"], e["from_version"], e["to_version"])
            == ("software_version_changed", "Git.Git", "1.0.0", "2.0.0")
            for e in events
        )
        found = console(server, seeded, "GET", "/api/software", params={"q": "Git.Git < 2.0.0"})
        assert found["items"] == []  # no PC has it older than 2.0 any more
    finally:
        assert agent.stop() == 0

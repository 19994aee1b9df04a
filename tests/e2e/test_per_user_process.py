"""Apps in users' profiles end to end on Linux: the real agent process, with a winget
stand-in that answers per profile and stand-in user sessions, reports the machine's updates
and a logged-on user's to the real server, which keeps whose each row is; an admin runs the
user's update and the agent installs it in that user's session, with ``--scope user``."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.per_user_support import PerUserWinget, upgrades
from tests.agent_process import AgentProcess, wait_until
from tests.e2e.test_agent_process import console_get
from tests.support import Seeded

pytestmark = pytest.mark.e2e

ADA = "AzureAD\\ada"


def rows(server: Any, seeded: Seeded, device_id: str) -> list[tuple[str, str, str | None]]:
    items = console_get(server, seeded, f"/api/devices/{device_id}/updates")["items"]
    return sorted((row["package_identifier"], row["scope"], row["user"]) for row in items)


def test_a_users_update_is_reported_as_theirs_and_installed_in_their_session(
    agent: AgentProcess, servers, seeded: Seeded, tmp_path: Path
):
    server = servers()
    winget = PerUserWinget(tmp_path / "winget")
    ada = winget.log_on(ADA, 2, upgrade=upgrades("Spotify.Spotify"))
    device_id = agent.configure(
        api_url=f"{server.base_url}/api",
        enrollment_secret=seeded.enrollment_secret,
        winget_path=winget.path,
    )
    config = json.loads(agent.config.read_text())
    agent.config.write_text(json.dumps({**config, "user_sessions_file": str(winget.sessions_file)}))

    assert agent.cli("once").returncode == 0
    shown = rows(server, seeded, device_id)
    assert ("Spotify.Spotify", "user", ADA) in shown
    assert all(scope == "machine" for package, scope, _ in shown if package != "Spotify.Spotify")
    assert "per_user" in console_get(server, seeded, f"/api/devices/{device_id}")["capabilities"]

    agent.start()
    with httpx.Client(base_url=server.base_url, headers=seeded.auth_headers) as http:
        queued = http.post(
            f"/api/devices/{device_id}/commands",
            json={"kind": "RUN_UPDATES", "packages": ["Spotify.Spotify"]},
        )
        assert queued.status_code == 201, queued.text
        command_id = queued.json()["id"]

        def finished() -> dict[str, Any] | None:
            command: dict[str, Any] = http.get(f"/api/commands/{command_id}").json()
            return command if command["status"] in ("succeeded", "failed", "partial") else None

        done = wait_until(finished, "the user's install", timeout_s=30)
    assert done["status"] == "succeeded", (done, agent.log())
    assert [(r["package_identifier"], r["outcome"]) for r in done["results"]] == [
        ("Spotify.Spotify", "success")
    ]
    installs = [call for call in winget.calls(ada) if "--id" in call["argv"]]
    assert len(installs) == 1
    assert {"Spotify.Spotify", "--scope", "user"} <= set(installs[0]["argv"])
    assert installs[0]["username"] == "ada"
    assert not [c for c in winget.calls(winget.machine) if "Spotify.Spotify" in c["argv"]]

"""A disk image cloned after the agent enrolled, in real processes: two agents (the simulator's
real runtime) share one config, so one device id and token; the real server flags the
alternation, an admin splits it, and the copy takes a device of its own and keeps it."""

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent_process import wait_until
from tests.support import BIN, LiveServer, Seeded, seed_database

pytestmark = pytest.mark.e2e


@pytest.fixture
def seeded(database_url: str, live_server: LiveServer) -> Seeded:
    import asyncio

    return asyncio.run(seed_database(database_url))


@pytest.fixture
def simulators(
    live_server: LiveServer, seeded: Seeded
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(state_dir: Path, *options: str) -> subprocess.Popen[bytes]:
        with (state_dir.parent / f"{state_dir.name}.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    str(BIN / "lunaris-agent"),
                    "simulate",
                    "--api-url",
                    f"{live_server.base_url}/api",
                    "--count",
                    "1",
                    "--state-dir",
                    str(state_dir),
                    *options,
                ],
                env={
                    "LUNARIS_ENROLLMENT_SECRET": seeded.enrollment_secret,
                    "PATH": "/usr/bin:/bin",
                },
                stdout=log,  # the process has its own copy of the file
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def api(live_server: LiveServer, seeded: Seeded) -> Iterator[httpx.Client]:
    """The admin's API client."""
    with httpx.Client(
        base_url=f"{live_server.base_url}/api",
        headers={"Authorization": f"Bearer {seeded.api_token}"},
        timeout=10,
    ) as client:
        yield client


def test_a_cloned_identity_is_split_into_two_devices(api: httpx.Client, simulators, tmp_path: Path):
    golden = tmp_path / "golden"
    assert simulators(golden, "--once").wait(timeout=60) == 0
    (config_path,) = golden.glob("*/config.json")
    shared = json.loads(config_path.read_text())
    device_id = shared["device_id"]
    # The image is copied to a second PC, which the admin named differently.
    copy = tmp_path / "copy"
    shutil.copytree(golden, copy)
    (copy_config,) = copy.glob("*/config.json")
    cloned = {**shared, "simulated_hostname": "PC-COPY"}
    copy_config.write_text(json.dumps(cloned))

    for state_dir in (golden, copy):
        simulators(state_dir, "--duration", "60", "--heartbeat-interval", "0.3")

    def flagged() -> dict | None:
        return api.get(f"/devices/{device_id}").json()["clone_suspected"]

    seen = wait_until(flagged, "the clone flag", timeout_s=30)
    assert "PC-COPY" in seen["hostnames"]
    split = api.post(f"/devices/{device_id}/split", json={"hostname": "PC-COPY"})
    assert split.status_code == 201, split.text

    def copy_moved() -> str | None:
        now_id = json.loads(copy_config.read_text())["device_id"]
        return now_id if now_id != device_id else None

    new_id = wait_until(copy_moved, "the copy to take its own id", timeout_s=30)
    assert json.loads(config_path.read_text())["device_id"] == device_id

    def completed() -> list[dict] | None:
        splits = api.get(f"/devices/{device_id}/splits").json()
        return splits if splits[0]["status"] == "completed" else None

    (done,) = wait_until(completed, "the split to complete", timeout_s=30)
    assert done["new_device_id"] == new_id

    def reported() -> dict | None:
        # The copy scans and reports as the new device at once (a simulated scan may fail:
        # then the report is its scan error).
        shown = api.get(f"/devices/{new_id}").json()
        return shown if shown["last_scan_at"] or shown["scan_error"] else None

    new = wait_until(reported, "the copy's report as the new device", timeout_s=30)
    time.sleep(2)  # both keep heartbeating, each as itself
    old, new = (api.get(f"/devices/{d}").json() for d in (device_id, new_id))
    assert (old["hostname"], old["clone_suspected"]) == (shared["simulated_hostname"], None)
    assert (new["hostname"], new["clone_suspected"]) == ("PC-COPY", None)

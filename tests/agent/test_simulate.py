"""The simulator against the real app (in-process), and as a process against the real server."""

import itertools
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_agent.cli import main
from lunaris_agent.simulate import fleet as fleet_module
from lunaris_agent.simulate import inventory as inventory_module
from lunaris_agent.simulate.catalog import CATALOG
from lunaris_agent.simulate.fleet import HOSTNAME_KEY, SimulationOptions, simulate
from lunaris_agent.simulate.inventory import Inventory
from lunaris_protocol import list_digest
from lunaris_server.core.versions import sort_key
from lunaris_server.devices.models import Device
from tests.agent.inventory_held import held
from tests.support import (
    LiveServer,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    run_cli,
)

pytestmark = pytest.mark.e2e

API = "http://testserver/api"


def options(state_dir: Path, secret: str, **overrides: Any) -> SimulationOptions:
    settings = {"count": 5, "once": True} | overrides
    return SimulationOptions(api_url=API, enrollment_secret=secret, state_dir=state_dir, **settings)


async def run(app: FastAPI, simulation: SimulationOptions) -> fleet_module.FleetStats:
    return await simulate(simulation, transport=httpx.ASGITransport(app=app))


async def console_devices(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    await create_user(app)
    login = await client.post(
        "/api/auth/login", json={"username": "admin", "password": "correct horse"}
    )
    assert login.status_code == 200, login.text
    response = await client.get("/api/devices", params={"limit": 500})
    assert response.status_code == 200, response.text
    devices: dict[str, Any] = response.json()
    return devices


def state_ids(state_dir: Path) -> set[str]:
    configs = state_dir.glob("agent-*/config.json")
    return {json.loads(path.read_text())["device_id"] for path in configs}


async def test_once_registers_and_reports_every_device(app, client, tmp_path):
    stats = await run(app, options(tmp_path, await create_secret(app)))
    assert (stats.registered, stats.heartbeats, stats.reports) == (5, 5, 5)
    assert stats.failed_devices == 0

    devices = await console_devices(app, client)
    assert devices["total"] == 5
    assert {d["id"] for d in devices["items"]} == state_ids(tmp_path)
    for device in devices["items"]:
        assert device["hostname"].startswith(("DESKTOP-", "LT-"))
        assert device["os_version"].startswith("Windows 1")
        assert (device["updates_count"] == 0) == (device["scan_error"] is not None), device
    updates = (await client.get("/api/updates")).json()
    assert updates["total"] > 0
    assert {u["package_identifier"] for u in updates["items"]} <= {row[0] for row in CATALOG}


async def test_running_again_reuses_the_devices(app, client, tmp_path):
    secret = await create_secret(app)
    await run(app, options(tmp_path, secret))
    again = await run(app, options(tmp_path, secret))
    # The same devices heartbeat and send the same first report: nothing new anywhere.
    assert (again.registered, again.heartbeats, again.reports, again.changes) == (0, 5, 5, 0)
    assert (await console_devices(app, client))["total"] == 5


async def test_a_refused_token_waits_for_an_admin_to_approve_enrolling_again(app, client, tmp_path):
    """A PC whose token is not its device's any more (a config restored from a backup) may
    not simply register again: an admin approves that agent's request, then it registers."""
    secret = await create_secret(app)
    await run(app, options(tmp_path, secret))
    state_file = tmp_path / "agent-0003" / "config.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps(state | {"device_token": "lnd_forgotten"}))

    waiting = await run(app, options(tmp_path, secret))
    assert (waiting.registered, waiting.failed_devices) == (0, 1)
    kept = json.loads(state_file.read_text())
    assert kept["device_token"] == "lnd_forgotten"
    assert kept["registration_key"]
    await create_user(app, "approver")
    admin = {"Authorization": f"Bearer {await create_api_token(app, 'approver')}"}
    asks = f"/api/devices/{state['device_id']}/reenrollments"
    pending = (await client.get(asks, headers=admin)).json()
    assert [(p["status"], p["hostname"]) for p in pending] == [("pending", state[HOSTNAME_KEY])]
    approved = await client.post(f"{asks}/{pending[0]['id']}/approve", headers=admin)
    assert approved.status_code == 200, approved.text

    again = await run(app, options(tmp_path, secret))
    assert (again.registered, again.failed_devices) == (1, 0)
    registered = json.loads(state_file.read_text())
    assert registered["device_token"] not in ("lnd_forgotten", None)
    assert "registration_key" not in registered
    assert (await console_devices(app, client))["total"] == 5


async def test_a_bad_secret_fails_the_devices_without_crashing(app, tmp_path):
    stats = await run(app, options(tmp_path, "lun_enr_wrong", count=3))
    assert (stats.registered, stats.reports, stats.failed_devices) == (0, 0, 3)


class Unreachable(httpx.AsyncBaseTransport):
    """Refuses the first ``failures`` connections, then passes requests on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_an_unreachable_server_is_retried(app, tmp_path, monkeypatch):
    monkeypatch.setattr(fleet_module, "ONCE_FIRST_RETRY_S", 0.01)
    transport = Unreachable(httpx.ASGITransport(app=app), failures=3)
    stats = await simulate(
        options(tmp_path, await create_secret(app), count=1), transport=transport
    )
    # Attempt 1 fails twice (heartbeat, then report); attempt 2's heartbeat fails but its report
    # goes through; attempt 3 succeeds whole and reports again.
    assert (stats.retries, stats.registered, stats.reports, stats.failed_devices) == (3, 1, 2, 0)


async def test_with_once_an_unreachable_server_is_given_up_on(app, tmp_path, monkeypatch):
    monkeypatch.setattr(fleet_module, "ONCE_FIRST_RETRY_S", 0.01)
    transport = Unreachable(httpx.ASGITransport(app=app), failures=100)
    stats = await simulate(
        options(tmp_path, await create_secret(app), count=2), transport=transport
    )
    assert stats.failed_devices == 2
    # Per attempt the heartbeat and the report each fail once.
    assert stats.retries == 2 * fleet_module.ONCE_ATTEMPTS * 2


async def test_runs_for_a_duration_with_heartbeats_scans_and_inventories(
    app, tmp_path, monkeypatch
):
    monkeypatch.setattr(inventory_module, "LIST_ERROR_RATE", 0.0)
    simulation = options(
        tmp_path,
        await create_secret(app),
        count=3,
        once=False,
        duration_s=1.5,
        heartbeat_interval_s=0.2,
        scan_interval_s=0.5,
        inventory_interval_s=0.5,
    )
    stats = await run(app, simulation)
    assert stats.registered == 3
    assert stats.heartbeats >= 3 * 4
    assert stats.reports >= 3 * 2
    # Each device's digest, which the server did not hold, and its list; then again at the
    # interval, the list along when the scans' drift changed it.
    assert stats.full_inventories >= 3
    assert stats.inventories >= 3 * 2 + 3
    assert stats.failed_devices == 0


def test_a_device_starts_from_the_same_list_every_time():
    device_id = uuid.uuid4()
    assert Inventory(device_id).scan() == Inventory(device_id).scan()
    assert Inventory(device_id).scan() != Inventory(uuid.uuid4()).scan()


@pytest.mark.parametrize("seed", range(30))
def test_updates_are_resolved_and_detected_over_time(seed):
    # Every device, even one with every catalog app at its newest, sees both over time.
    inventory = Inventory(uuid.UUID(int=seed))
    scans = [inventory.scan() for _ in range(60)]
    lists = [{u.package_identifier for u in s.updates} for s in scans if s.scan_error is None]
    resolved = any(before - after for before, after in itertools.pairwise(lists))
    detected = any(after - before for before, after in itertools.pairwise(lists))
    assert resolved
    assert detected
    # An app never moves back a version: each one listed is at least what it was before.
    installed = {i.package_identifier: i.version for i in inventory.installed}
    for scan in scans:
        for update in scan.updates:
            if update.package_identifier in installed and update.installed_version[0] not in "<U":
                assert sort_key(installed[update.package_identifier]) >= sort_key(
                    update.installed_version
                )


def test_a_fleet_looks_like_real_winget_output():
    reports = [Inventory(uuid.uuid4()).scan() for _ in range(300)]
    rows = [row for report in reports for row in report.updates]
    assert len(CATALOG) >= 60
    assert all(4 <= len(r.updates) <= 18 for r in reports if r.scan_error is None)
    assert 0 < sum(r.scan_error is not None for r in reports) < 60
    kinds = Counter(
        kind
        for row in rows
        for kind, present in {
            "msstore": row.source == "msstore",
            "explicit": row.explicit_targeting,
            "truncated": row.truncated and row.package_identifier.endswith("…"),
            "range": row.installed_version.startswith("< "),
            "unknown": row.installed_version == "Unknown",
        }.items()
        if present
    )
    assert set(kinds) == {"msstore", "explicit", "truncated", "range", "unknown"}
    assert kinds["truncated"] < len(rows) / 10


@pytest.mark.parametrize(
    "wrong",
    [["--once", "--duration", "5"], ["--count", "0"], ["--api-url", "localhost:8000/api"]],
    ids=["once-and-duration", "no-devices", "relative-url"],
)
def test_the_cli_refuses_bad_arguments(wrong):
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--api-url", "http://h/api", "--enrollment-secret", "s", *wrong])
    assert exited.value.code == 2


def test_the_cli_stops_on_a_corrupt_state_file(tmp_path, caplog):
    (tmp_path / "agent-0000").mkdir()
    (tmp_path / "agent-0000" / "config.json").write_text("{half a file")
    arguments = ["--api-url", "http://127.0.0.1:9/api", "--enrollment-secret", "s"]
    assert main(["simulate", "--once", *arguments, "--state-dir", str(tmp_path)]) == 2
    assert "agent-0000" in caplog.text


def test_the_cli_simulates_against_the_real_server(live_server: LiveServer, tmp_path):
    enrolled = run_cli(live_server.env, "enrollment", "add", "--name", "e2e")
    assert enrolled.returncode == 0, enrolled.stderr
    secret = enrolled.stdout.strip().splitlines()[-1]

    command = [sys.executable, "-m", "lunaris_agent", "simulate", "--once", "--count", "3"]
    command += ["--api-url", f"{live_server.base_url}/api", "--state-dir", str(tmp_path)]
    env = os.environ | {"LUNARIS_ENROLLMENT_SECRET": secret}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "registered 3, heartbeats 3, reports sent 3" in result.stderr
    assert result.stdout == ""

    added = run_cli(
        live_server.env, "user", "add", "e2e", "--password-stdin", stdin="correct horse\n"
    )
    assert added.returncode == 0, added.stderr
    with httpx.Client(base_url=live_server.base_url) as http:
        login = http.post("/api/auth/login", json={"username": "e2e", "password": "correct horse"})
        assert login.status_code == 200, login.text
        devices = http.get("/api/devices").json()
    assert {d["id"] for d in devices["items"]} == state_ids(tmp_path)
    assert devices["total"] == 3


async def test_a_simulated_install_removes_the_update_unless_it_fails(monkeypatch):
    monkeypatch.setattr(inventory_module, "INSTALL_SECONDS", (0.0, 0.0))
    inventory = Inventory(uuid.uuid4())
    monkeypatch.setattr(inventory_module, "SCAN_ERROR_RATE", 0.0)
    waiting = [u.package_identifier for u in inventory.scan().updates]
    outcomes = {package: await inventory.install(package) for package in waiting}
    left = {u.package_identifier for u in inventory._pending.values()}
    assert left == {p for p, outcome in outcomes.items() if not outcome.succeeded}
    assert all(
        o.install_outcome in ("success", "success_reboot_required", "installer_failed")
        for o in outcomes.values()
    )
    gone = await inventory.install("Not.Waiting")
    assert gone.install_outcome == "no_applicable_upgrade"


def test_a_device_lists_about_as_many_programs_as_asked_the_same_every_time(monkeypatch):
    monkeypatch.setattr(inventory_module, "LIST_ERROR_RATE", 0.0)
    device_id = uuid.uuid4()
    listed = Inventory(device_id).list_installed()
    assert listed == Inventory(device_id).list_installed()
    assert listed != Inventory(uuid.uuid4()).list_installed()
    assert listed.software is not None
    assert listed.digest == list_digest(listed.software)
    sizes = [len(Inventory(uuid.uuid4(), apps=50).installed) for _ in range(50)]
    assert all(40 <= size <= 60 for size in sizes)
    assert len(set(sizes)) > 1


def test_a_listing_looks_like_winget_list_and_holds_every_update():
    rows = []
    for _ in range(100):
        inventory = Inventory(uuid.uuid4())
        updates = {u.package_identifier: u.installed_version for u in inventory.scan().updates}
        versions = {item.package_identifier: item.version for item in inventory.installed}
        assert updates.items() <= versions.items()
        rows += inventory.installed
    kinds = Counter(
        "msix"
        if row.package_identifier.startswith("MSIX\\")
        else "arp"
        if row.package_identifier.startswith("ARP\\")
        else row.source
        for row in rows
    )
    assert set(kinds) == {"winget", "msstore", "msix", "arp"}
    assert all(
        row.source is None for row in rows if row.package_identifier[:4] in ("MSIX", "ARP\\")
    )
    failed = [Inventory(uuid.uuid4()).list_installed().scan_error for _ in range(300)]
    assert any(failed)  # now and then, winget list fails too


async def test_an_install_or_a_resolved_update_is_the_available_version_now(monkeypatch):
    monkeypatch.setattr(inventory_module, "INSTALL_SECONDS", (0.0, 0.0))
    monkeypatch.setattr(inventory_module, "INSTALL_FAILURE_RATE", 0.0)
    monkeypatch.setattr(inventory_module, "LIST_ERROR_RATE", 0.0)
    inventory = Inventory(uuid.uuid4())
    update = next(iter(inventory._pending.values()))
    before = inventory.list_installed()
    assert (await inventory.install(update.package_identifier)).succeeded
    after = inventory.list_installed()
    assert after.digest != before.digest
    versions = {item.package_identifier: item.version for item in after.software or []}
    assert versions[update.package_identifier] == update.available_version

    monkeypatch.setattr(inventory_module, "RESOLVE_RATE", 1.0)
    waiting = dict(inventory._pending)
    inventory.scan()
    inventory.scan()  # drifts: every update resolved
    versions = {item.package_identifier: item.version for item in inventory.installed}
    # At least the version that waited: a newer one may have come out and been installed by
    # the second scan's drift.
    assert all(
        sort_key(versions[key]) >= sort_key(update.available_version)
        for key, update in waiting.items()
    )


async def test_once_sends_every_devices_inventory_digest_first(app, tmp_path, monkeypatch):
    monkeypatch.setattr(inventory_module, "LIST_ERROR_RATE", 0.0)
    secret = await create_secret(app)
    first = await run(app, options(tmp_path, secret, count=3))
    # Each device's digest, which the server did not hold, then its list.
    assert (first.inventories, first.full_inventories) == (6, 3)
    assert first.failed_devices == 0
    async with app_state(app).database.session() as session:
        listed = list(await session.scalars(select(Device.id)))
    assert len(listed) == 3
    for device_id in listed:
        stored = await held(app, device_id)
        assert stored is not None
        assert len(stored.software) >= 100
    again = await run(app, options(tmp_path, secret, count=3))
    assert (again.inventories, again.full_inventories) == (3, 0)  # the digest alone

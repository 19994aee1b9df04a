"""The agent's runtime against the real app (in-process): registration, the spool across an
outage, refusals, back-off; scans come from a scanner the test controls."""

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lunaris_agent import config as config_file
from lunaris_agent.client import AgentClient
from lunaris_agent.config import AgentConfig
from lunaris_agent.identity import DeviceFacts
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.runtime.exits import AgentStopped, ExitCode
from lunaris_agent.spool import Spool
from lunaris_agent.status import describe
from lunaris_agent.winget.report import report_from_scan
from lunaris_agent.winget.results import ScanFailure, ScanResult, ScanRow
from lunaris_protocol import (
    RegisterRequest,
    RegisterResponse,
    UpdateItem,
    UpdateReport,
    UpdateReportResponse,
)
from tests.support import create_api_token, create_secret, create_user, free_port

API = "http://testserver/api"
FACTS = DeviceFacts(hostname="LT-FIN-0042", os_version="Windows 11 Pro 23H2 (10.0.22631.4460)")


def item(identifier: str, available: str = "2.0") -> UpdateItem:
    return UpdateItem(
        package_identifier=identifier,
        name=identifier,
        installed_version="1.0",
        available_version=available,
        source="winget",
    )


class Scans:
    """A scanner that returns the reports the test queues, then repeats the last one."""

    def __init__(self, *reports: UpdateReport) -> None:
        self.reports = list(reports)
        self.count = 0

    async def __call__(self) -> UpdateReport:
        self.count += 1
        return self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]


def new_config(tmp_path: Path, secret: str | None, api_url: str = API) -> AgentConfig:
    return config_file.create(
        tmp_path / "agent" / "config.json", api_url=api_url, enrollment_secret=secret
    )


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[AgentClient]:
    async with AgentClient(API, transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
async def unreachable() -> AsyncIterator[AgentClient]:
    async with AgentClient(f"http://127.0.0.1:{free_port()}/api", timeout_s=2) as client:
        yield client


def agent(config: AgentConfig, client: AgentClient, scans: Scans) -> Agent:
    return Agent(config, client, scanner=scans, facts=FACTS, rng=random.Random(7))


async def revoke(app: FastAPI, device_id: str, *, block: bool = False) -> None:
    """An admin revokes the device through the API (``block``: it may not enroll again)."""
    await create_user(app, "revoker")
    token = await create_api_token(app, "revoker")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        revoked = await http.post(
            f"/api/devices/{device_id}/revoke",
            params={"block": "true"} if block else {},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert revoked.status_code == 200, revoked.text


async def viewer_token(app: FastAPI) -> str:
    await create_user(app, username="reader", role="viewer")
    return await create_api_token(app, "reader")


async def console(app: FastAPI, path: str, token: str | None = None) -> Any:
    token = token or await viewer_token(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_once_registers_forgets_the_secret_and_reports(app, server, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    scans = Scans(UpdateReport(updates=[item("Mozilla.Firefox"), item("Git.Git")]))
    device = agent(config, server, scans)

    assert await device.once() == ExitCode.OK

    on_disk = json.loads(config.path.read_text())
    assert "enrollment_secret" not in on_disk
    assert on_disk["device_token"].startswith("lnd_")
    assert on_disk["device_id"] == str(config.device_id)
    assert (on_disk["heartbeat_interval_s"], on_disk["scan_interval_s"]) == (60, 3600)
    updates = await console(app, f"/api/devices/{config.device_id}/updates")
    assert sorted(row["package_identifier"] for row in updates["items"]) == [
        "Git.Git",
        "Mozilla.Firefox",
    ]
    assert Spool(config.spool_dir).pending_report() is None


class RecordingClient(AgentClient):
    """The real client to the real app, keeping each registration and report it sends."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(API, transport=httpx.ASGITransport(app=app))
        self.registrations: list[RegisterRequest] = []
        self.reports: list[UpdateReport] = []

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        self.registrations.append(request)
        return await super().register(request)

    async def report(self, token: str, report: UpdateReport) -> UpdateReportResponse:
        self.reports.append(report)
        return await super().report(token, report)


async def test_the_registration_and_every_report_carry_the_configured_tags(app, tmp_path):
    path = new_config(tmp_path, await create_secret(app)).path
    token = await viewer_token(app)
    async with RecordingClient(app) as client:
        for tags, expected in [
            (["Kiosk", "berlin"], ["berlin", "kiosk"]),  # registers
            (["finance"], ["finance"]),  # changed since: the next report says so
            ([], []),  # none: the device's agent tags are cleared
        ]:
            config = config_file.create(path, api_url=API, enrollment_secret=None, tags=tags)
            assert await agent(config, client, Scans(UpdateReport())).once() == ExitCode.OK
            assert client.reports[-1].tags == expected
            device = await console(app, f"/api/devices/{config.device_id}", token)
            assert device["agent_tags"] == expected
            assert device["tags"] == []  # admins' tags are another kind
    assert [request.tags for request in client.registrations] == [["berlin", "kiosk"]]
    assert len(client.reports) == 3


async def test_a_report_an_older_agent_spooled_goes_with_the_tags_configured_now(app, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    config = config_file.create(config.path, api_url=API, enrollment_secret=None, tags=["kiosk"])
    config.spool_dir.mkdir(parents=True)
    (config.spool_dir / "report.json").write_text(
        json.dumps({"updates": [item("Old.Spooled").model_dump()], "scan_error": None}),
        encoding="utf-8",
    )
    async with RecordingClient(app) as client:
        device = agent(config, client, Scans(UpdateReport(updates=[item("New.Scan")])))
        assert await device.once() == ExitCode.OK
    spooled, scanned = client.reports
    assert [row.package_identifier for row in spooled.updates] == ["Old.Spooled"]
    assert (spooled.tags, scanned.tags) == (["kiosk"], ["kiosk"])
    assert Spool(config.spool_dir).pending_report() is None


async def test_a_report_made_during_an_outage_arrives_when_the_server_is_back(
    app, server, unreachable, tmp_path
):
    config = new_config(tmp_path, await create_secret(app))
    assert await agent(config, server, Scans(UpdateReport(updates=[item("A.A")]))).once() == 0
    config = config_file.load(config.path)

    # Server gone: the scan still happens and waits in the spool, across a restart.
    offline = agent(config, unreachable, Scans(UpdateReport(updates=[item("B.B")])))
    assert await offline.once() == ExitCode.FAILED
    assert Spool(config.spool_dir).pending_report() == UpdateReport(updates=[item("B.B")])

    # Back: the spooled report goes first, then the new scan.
    back = agent(config, server, Scans(UpdateReport(updates=[item("B.B"), item("C.C")])))
    assert await back.once() == ExitCode.OK
    events = await console(app, f"/api/devices/{config.device_id}/events")
    history = sorted((e["package_identifier"], e["kind"]) for e in events["items"])
    assert history == [
        ("A.A", "detected"),
        ("A.A", "resolved"),  # by the spooled report, which listed only B.B
        ("B.B", "detected"),
        ("C.C", "detected"),
    ]
    assert Spool(config.spool_dir).pending_report() is None


async def test_a_refused_secret_stops_with_a_clear_error(server, tmp_path):
    config = new_config(tmp_path, "lun_enr_not-a-real-secret")
    with pytest.raises(AgentStopped, match=r"refused to register.*secret is not valid") as stop:
        await agent(config, server, Scans(UpdateReport())).once()
    assert stop.value.code == ExitCode.REJECTED


async def test_no_token_and_no_secret_says_what_to_run(server, tmp_path):
    config = new_config(tmp_path, None)
    with pytest.raises(AgentStopped, match="lunaris-agent configure"):
        await agent(config, server, Scans(UpdateReport())).once()


async def test_a_rejected_token_stops_the_run_unless_a_secret_is_left(app, server, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    await agent(config, server, Scans(UpdateReport())).once()
    registered = config_file.load(config.path)

    await revoke(app, str(registered.device_id))  # an admin did: this token is now dead

    stale = agent(registered, server, Scans(UpdateReport()))
    with pytest.raises(AgentStopped, match="no longer accepts this device's token") as stop:
        await stale.run(asyncio.Event())
    assert stop.value.code == ExitCode.REJECTED

    # With a secret configured again, the agent registers anew instead of stopping.
    config_file.create(registered.path, api_url=API, enrollment_secret=await create_secret(app))
    renewed = agent(config_file.load(registered.path), server, Scans(UpdateReport()))
    assert await renewed.once() == ExitCode.OK
    assert config_file.load(registered.path).device_token != registered.device_token


async def test_a_refused_registration_keeps_the_token_and_status_says_why(app, server, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    await agent(config, server, Scans(UpdateReport())).once()
    registered = config_file.load(config.path)
    await revoke(app, str(registered.device_id), block=True)
    config_file.create(registered.path, api_url=API, enrollment_secret=await create_secret(app))
    with_secret = config_file.load(registered.path)
    assert with_secret.device_token == registered.device_token

    stopped = agent(with_secret, server, Scans(UpdateReport()))
    with pytest.raises(AgentStopped, match="blocked from enrolling again"):
        await stopped.once()
    assert config_file.load(registered.path).device_token == registered.device_token
    status = "\n".join(describe(config_file.load(registered.path)))
    assert "last error:" in status
    assert "blocked from enrolling again" in status


async def test_run_heartbeats_scans_at_start_and_stops_when_asked(app, server, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    scans = Scans(UpdateReport(updates=[item("Git.Git")]))
    device = agent(config, server, scans)
    stop = asyncio.Event()
    running = asyncio.create_task(device.run(stop))
    for _ in range(200):
        # The report sent (the scan loop) and a heartbeat answered (the heartbeat loop, which
        # then records the contact): the loops run side by side, so wait for both.
        sent = Spool(config.spool_dir).pending_report() is None and scans.count
        if sent and config.state_path.exists():
            break
        await asyncio.sleep(0.02)
    stop.set()
    assert await asyncio.wait_for(running, 5) == ExitCode.OK
    assert scans.count == 1
    detail = await console(app, f"/api/devices/{config.device_id}")
    assert detail["status"] == "online"
    assert detail["updates_count"] == 1
    state = json.loads(config.state_path.read_text())
    assert state["last_contact_at"] is not None


async def test_a_report_the_server_refuses_is_dropped_not_resent_forever(app, server, tmp_path):
    config = new_config(tmp_path, await create_secret(app))
    oversize = UpdateReport.model_construct(
        updates=[UpdateItem.model_construct(**(item("A.A").model_dump() | {"name": "x" * 600}))]
    )
    device = agent(config, server, Scans(oversize))
    assert await device.once() == ExitCode.OK
    assert Spool(config.spool_dir).pending_report() is None


def test_a_winget_failure_is_reported_as_a_scan_error_never_as_an_empty_list():
    failed = report_from_scan(
        ScanResult(updates=(), error=ScanFailure(code="0x8A15000F", message="source data missing"))
    )
    assert failed.updates == []
    assert failed.scan_error is not None
    assert (failed.scan_error.code, failed.scan_error.message) == (
        "0x8A15000F",
        "source data missing",
    )


def test_rows_the_protocol_cannot_carry_become_a_scan_error():
    row = ScanRow(
        "x" * 300, "name", "1.0", "2.0", "winget", explicit_targeting=False, truncated=False
    )
    report = report_from_scan(ScanResult(updates=(row,), error=None))
    assert report.scan_error is not None
    assert report.scan_error.code == "report_invalid"
    assert "package_identifier" in report.scan_error.message

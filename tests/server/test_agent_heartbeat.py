"""The heartbeat's fast path: the plain case is answered without the framework, every other
case reaches the FastAPI route with its body intact and gets the usual answer."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from lunaris_server.agent_api.heartbeat import HeartbeatFastPath
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.devices.cache import DeviceCache
from tests.support import (
    RecordingApp,
    app_state,
    create_api_token,
    create_secret,
    create_user,
    register_device,
)

HEARTBEAT = "/api/agent/heartbeat"


@pytest.fixture
def framework(app: FastAPI) -> RecordingApp:
    return RecordingApp(app)


@pytest.fixture
async def fast(app: FastAPI, framework: RecordingApp):
    fast_path = HeartbeatFastPath(framework, max_body_bytes=1024)

    async def with_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it before its middleware runs
        await fast_path(scope, receive, send)

    transport = httpx.ASGITransport(app=with_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_plain_heartbeat_never_reaches_the_framework(app, client, fast, framework):
    device = await register_device(client, await create_secret(app))
    framework.paths.clear()

    response = await fast.post(HEARTBEAT, headers=device.headers | {"X-Request-ID": "hb-1"})
    assert response.status_code == 200
    assert response.json() == {
        "heartbeat_interval_s": 60,
        "scan_interval_s": 3600,
        "inventory_interval_s": 21600,
        "commands": [],
        "new_identity": None,
    }
    assert response.headers["x-request-id"] == "hb-1"
    empty = await fast.post(HEARTBEAT, headers=device.headers, json={})
    assert empty.status_code == 200
    assert framework.paths == []


class SessionsOpened:
    """Database sessions opened by the requests this test sends (ASGITransport runs the app
    in the sending task); background loops (last-seen writer, sweepers) open their own in
    their own tasks and are not counted."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[Any] | None = None

    def watch(self) -> None:
        """Counts from now on, for requests sent from the current task."""
        self.count = 0
        self._task = asyncio.current_task()

    def opened(self) -> None:
        if self._task is not None and asyncio.current_task() is self._task:
            self.count += 1


@pytest.fixture
async def sessions(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> SessionsOpened:
    # Until the command sweeper's first pass has loaded which devices have commands
    # waiting, every heartbeat must look: wait for it.
    for _ in range(500):
        if app_state(app).part(CommandDelivery).loaded:
            break
        await asyncio.sleep(0.01)
    database = app_state(app).database
    counter = SessionsOpened()
    open_session = database.session

    def counting_session() -> Any:
        counter.opened()
        return open_session()

    monkeypatch.setattr(database, "session", counting_session)
    return counter


async def test_a_plain_heartbeat_of_a_known_device_opens_no_database_session(
    app, client, fast, sessions
):
    device = await register_device(client, await create_secret(app))
    assert (await fast.post(HEARTBEAT, headers=device.headers)).status_code == 200  # cached now
    sessions.watch()
    for _ in range(3):
        assert (await fast.post(HEARTBEAT, headers=device.headers)).status_code == 200
    assert sessions.count == 0
    # News still goes through the database.
    changed = await fast.post(HEARTBEAT, headers=device.headers, json={"hostname": "PC-2"})
    assert changed.status_code == 200
    assert sessions.count > 0


async def test_a_device_heartbeating_at_the_configured_interval_stays_cached(
    app, client, fast, sessions, monkeypatch
):
    state = app_state(app)
    clock = [1000.0]
    monkeypatch.setattr(state.part(DeviceCache), "_clock", lambda: clock[0])
    device = await register_device(client, await create_secret(app))
    clock[0] += 1  # after registration evicted it (a read as old as an eviction is not kept)
    assert (await fast.post(HEARTBEAT, headers=device.headers)).status_code == 200
    sessions.watch()
    for _ in range(5):
        clock[0] += state.settings.heartbeat_interval_s
        assert (await fast.post(HEARTBEAT, headers=device.headers)).status_code == 200
    assert sessions.count == 0


async def test_news_in_a_heartbeat_is_applied_on_the_fast_path(app, client, fast, framework):
    device = await register_device(client, await create_secret(app))
    response = await fast.post(HEARTBEAT, headers=device.headers, json={"agent_version": "9.9.9"})
    assert response.status_code == 200
    assert framework.paths == []
    await create_user(app)
    token = await create_api_token(app, "admin")
    detail = await client.get(
        f"/api/devices/{device.device_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert detail.json()["agent_version"] == "9.9.9"


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, None, 401, "not_authenticated"),
        ({"Authorization": "Basic abc"}, None, 401, "not_authenticated"),
        ({"Authorization": "Bearer lnd_unknown"}, None, 401, "not_authenticated"),
        ("device", b'{"hostname": 42}', 422, "invalid_request"),
        ("device", b'{"surprise": true}', 422, "invalid_request"),
        ("device", b"{not json", 400, "malformed_json"),
        # Past the fast path's 1 kB it stops reading; the application reads on and refuses it.
        ("device", b'{"hostname": "' + b"x" * 2_000_000 + b'"}', 413, "body_too_large"),
    ],
    ids=[
        "no-token",
        "not-bearer",
        "unknown-token",
        "bad-type",
        "unknown-field",
        "not-json",
        "huge",
    ],
)
async def test_everything_else_gets_the_frameworks_answer(
    app, client, fast, framework, headers: Any, body: bytes | None, status: int, code: str
):
    if headers == "device":
        headers = (await register_device(client, await create_secret(app))).headers
    framework.paths.clear()
    content_type = {"Content-Type": "application/json"}
    response = await fast.post(HEARTBEAT, headers=headers | content_type, content=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert framework.paths == [HEARTBEAT]


async def test_other_paths_pass_straight_through(fast, framework):
    response = await fast.get("/healthz")
    assert response.status_code == 200
    assert framework.paths == ["/healthz"]


FACTS = {
    "logged_on_user": "CONTOSO\\anna",
    "ip_addresses": ["2001:db8::41", "10.20.30.41"],
    "model": "Latitude 7440",
    "manufacturer": "Dell Inc.",
    "serial_number": "5CG1234XYZ",
}


@pytest.fixture
async def device_detail(app: FastAPI, client: httpx.AsyncClient) -> Any:
    await create_user(app)
    admin = {"Authorization": f"Bearer {await create_api_token(app, 'admin')}"}

    async def detail(device_id: str) -> Any:
        response = await client.get(f"/api/devices/{device_id}", headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    return detail


async def test_the_pcs_facts_are_kept_and_said_again_from_the_cache(
    app, client, fast, sessions, device_detail
):
    device = await register_device(client, await create_secret(app))
    said = await fast.post(
        HEARTBEAT, headers=device.headers, json={**FACTS, "reboot_pending": True}
    )
    assert said.status_code == 200
    # The same facts again (the addresses in another order): plain, no database session.
    again = {**FACTS, "ip_addresses": ["10.20.30.41", "2001:db8::41"], "reboot_pending": True}
    assert (await fast.post(HEARTBEAT, headers=device.headers, json=again)).status_code == 200
    sessions.watch()
    for _ in range(3):
        assert (await fast.post(HEARTBEAT, headers=device.headers, json=again)).status_code == 200
    assert sessions.count == 0
    # A new user logging on is news.
    moved = await fast.post(HEARTBEAT, headers=device.headers, json={"logged_on_user": ""})
    assert moved.status_code == 200
    assert sessions.count > 0

    detail = await device_detail(device.device_id)
    assert detail["logged_on_user"] == ""  # nobody at the console now
    assert detail["ip_addresses"] == ["10.20.30.41", "2001:db8::41"]
    assert (detail["model"], detail["manufacturer"]) == ("Latitude 7440", "Dell Inc.")
    assert detail["serial_number"] == "5CG1234XYZ"
    assert detail["reboot_pending_since"] is not None


async def test_an_address_that_is_none_is_refused_and_changes_nothing(
    app, client, fast, device_detail
):
    device = await register_device(client, await create_secret(app), **FACTS, reboot_pending=True)
    for bad in (["10.20.30.400"], ["10.0.0.1; DROP"], ["fe80::1%eth0"]):
        body = {"ip_addresses": bad, "model": "Other"}
        refused = await fast.post(HEARTBEAT, headers=device.headers, json=body)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "invalid_request"
    detail = await device_detail(device.device_id)
    assert detail["ip_addresses"] == ["10.20.30.41", "2001:db8::41"]  # as it registered
    assert detail["model"] == "Latitude 7440"
    assert detail["logged_on_user"] == "CONTOSO\\anna"
    assert detail["reboot_pending_since"] is not None  # Windows said so when it registered


async def test_windows_waiting_for_a_restart_is_pending_until_the_pc_starts(
    app, client, fast, device_detail
):
    device = await register_device(
        client, await create_secret(app), booted_at="2026-01-01T06:00:00Z"
    )
    assert (await device_detail(device.device_id))["reboot_pending_since"] is None
    pending = await fast.post(HEARTBEAT, headers=device.headers, json={"reboot_pending": True})
    assert pending.status_code == 200
    since = (await device_detail(device.device_id))["reboot_pending_since"]
    assert since is not None
    # Windows no longer says so but the PC has not started: the mark stays.
    same_boot = {"reboot_pending": False, "booted_at": "2026-01-01T06:00:00Z"}
    assert (await fast.post(HEARTBEAT, headers=device.headers, json=same_boot)).status_code == 200
    assert (await device_detail(device.device_id))["reboot_pending_since"] == since
    restarted = {"reboot_pending": False, "booted_at": "2099-01-01T06:00:00Z"}
    assert (await fast.post(HEARTBEAT, headers=device.headers, json=restarted)).status_code == 200
    assert (await device_detail(device.device_id))["reboot_pending_since"] is None

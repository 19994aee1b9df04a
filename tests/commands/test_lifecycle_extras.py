"""The ends of a command's life the agent cannot bring about itself: its device revoked, its
agent gone quiet while running it, and runs of a package limited to one source."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select, text

from lunaris_protocol import CommandProgress
from lunaris_server.app import create_app
from lunaris_server.commands import progress as command_progress
from lunaris_server.commands import service as commands
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.commands.models import Command
from lunaris_server.commands.sweeper import sweep_once
from lunaris_server.core.settings import Settings
from lunaris_server.updates.models import UpdateEvent
from tests.commands.helpers import (
    Events,
    Tokens,
    create_command,
    enrolled,
    heartbeat,
    progress,
    result,
)
from tests.support import FakeClock, app_state, register_body, update_row


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The tests sweep when they mean to; the app's own sweeper only loads the set at start.
    settings.command_sweep_interval_s = 3600
    return settings


async def create(
    client: httpx.AsyncClient, tokens: Tokens, device_id: str, packages: list[str] | None = None
) -> str:
    command_id: str = (await create_command(client, tokens, device_id, packages))["id"]
    return command_id


async def detail(client: httpx.AsyncClient, tokens: Tokens, command_id: str) -> dict:
    response = await client.get(f"/api/commands/{command_id}", headers=tokens.viewer)
    assert response.status_code == 200, response.text
    return response.json()


async def kinds(app: FastAPI, command_id: str) -> list[str]:
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(UpdateEvent.kind)
            .where(UpdateEvent.command_id == command_id)
            .order_by(UpdateEvent.id)
        )
        return list(rows)


# -- revoking a device ----------------------------------------------------------------------------


async def test_revoking_a_device_closes_its_open_commands(
    app, client, tokens, secret, events: Events, clock: FakeClock
):
    state = app_state(app)
    await state.part(CommandDelivery).reload()
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip", "Mozilla.Firefox"])
    other = await enrolled(client, secret, ["Git.Git"], hostname="PC-0002")
    finished = await create(client, tokens, device.device_id, ["Git.Git"])
    await heartbeat(client, device)
    await progress(client, device, finished, 1, status="succeeded")
    running = await create(client, tokens, device.device_id, ["7zip.7zip"])
    await heartbeat(client, device)
    await progress(client, device, running, 1, package_started="7zip.7zip")
    sent = await create(client, tokens, device.device_id, ["Git.Git"])
    await heartbeat(client, device)
    queued = await create(client, tokens, device.device_id, ["Mozilla.Firefox"])
    bystander = await create(client, tokens, other.device_id, None)
    assert state.part(CommandDelivery).may_have(device.device_id)
    await events.drain()

    clock.advance(minutes=5)
    revoked = await client.post(f"/api/devices/{device.device_id}/revoke", headers=tokens.admin)
    assert revoked.status_code == 200, revoked.text

    assert sorted(await events.commands()) == sorted(
        [(running, "failed"), (sent, "cancelled"), (queued, "cancelled")]
    )
    for command_id in (sent, queued):
        shown = await detail(client, tokens, command_id)
        assert shown["status"] == "cancelled"
        assert shown["message"] == "cancelled: the device was revoked"
        assert shown["finished_at"] is not None
    shown = await detail(client, tokens, running)
    assert (shown["status"], shown["current_package"]) == ("failed", None)
    assert shown["message"] == (
        "the device was revoked while this command was running; its agent can no longer report"
    )
    assert (await detail(client, tokens, finished))["status"] == "succeeded"
    assert (await detail(client, tokens, bystander))["status"] == "queued"
    # Nothing is waiting for the device any more, in this process's set too.
    assert not state.part(CommandDelivery).may_have(device.device_id)
    assert state.part(CommandDelivery).may_have(other.device_id)
    assert await sweep_once(state) == 0

    # Revoking it again changes nothing.
    again = await client.post(f"/api/devices/{device.device_id}/revoke", headers=tokens.admin)
    assert again.status_code == 200
    assert await events.commands() == []

    # Enrolled again, the agent reports how the install it was running ended: recorded, and
    # the command stays failed.
    body = register_body(secret, device_id=device.device_id)
    registered = await client.post("/api/agent/register", json=body)
    assert registered.status_code == 200, registered.text
    device = replace(device, token=registered.json()["device_token"])
    assert (await heartbeat(client, device))["commands"] == []
    await progress(client, device, running, 2, result=result("7zip.7zip"))
    final = await progress(client, device, running, 3, status="succeeded")
    assert final == {"status": "failed"}
    shown = await detail(client, tokens, running)
    assert shown["status"] == "failed"
    assert shown["message"].startswith(
        "the agent reported it succeeded after the server failed it (the device was revoked"
    )
    assert [r["package_identifier"] for r in shown["results"]] == ["7zip.7zip"]
    assert await kinds(app, running) == ["install_started", "install_succeeded"]


async def test_a_revoke_and_a_step_applied_at_the_same_moment_both_go_through(
    app, client, tokens, secret, backend
):
    """The step holds its command's row and then writes history about the device; the revoke
    holds the device's row and then closes that command. Neither may wait for the other."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one transaction at a time")
    state = app_state(app)
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = await create(client, tokens, device.device_id, ["Git.Git"])
    await heartbeat(client, device)
    await progress(client, device, command_id, 1, package_started="Git.Git")

    async with state.database.session() as step:
        # The progress route's first statement: the command's row, locked.
        await step.scalar(select(Command).where(Command.id == command_id).with_for_update())
        revoking = asyncio.create_task(
            client.post(f"/api/devices/{device.device_id}/revoke", headers=tokens.admin)
        )
        await until_a_transaction_waits_for_a_lock(step)
        applied = await command_progress.apply_progress(
            step,
            device_id=device.device_id,
            command_id=command_id,
            progress=CommandProgress.model_validate(
                {"sequence": 2, "status": "running", "result": result("Git.Git")}
            ),
            now=state.clock(),
        )
        assert applied.status == "running"
        await step.commit()
    revoked = await revoking
    assert revoked.status_code == 200, revoked.text
    shown = await detail(client, tokens, command_id)
    assert shown["status"] == "failed"
    assert [r["package_identifier"] for r in shown["results"]] == ["Git.Git"]
    assert await kinds(app, command_id) == ["install_started", "install_succeeded"]


async def until_a_transaction_waits_for_a_lock(session) -> None:
    """Returns once another transaction on the database waits for a row lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    for _ in range(1000):
        if await session.scalar(waiting):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the revoke never waited for the command's row")


async def test_the_sweep_closes_a_command_created_as_its_device_was_revoked(
    app, client, tokens, secret, events: Events, clock: FakeClock
):
    """A command queued by a transaction that did not see the revocation (they ran at the same
    moment) is closed by the next sweep of any process."""
    state = app_state(app)
    device = await enrolled(client, secret, ["Git.Git"])
    live = await enrolled(client, secret, ["Git.Git"], hostname="PC-0002")
    response = await client.post(f"/api/devices/{device.device_id}/revoke", headers=tokens.admin)
    assert response.status_code == 200
    kept = await create(client, tokens, live.device_id)
    async with state.database.session() as session:
        late = Command(
            id="0f0f0f0f-0000-4000-8000-000000000001",
            device_id=device.device_id,
            kind=commands.RUN_UPDATES,
            packages=None,
            status="queued",
            created_by="user:admin",
            created_at=clock.now,
            updated_at=clock.now,
            expires_at=clock.now + timedelta(days=1),
            last_sequence=0,
            message="",
        )
        session.add(late)
        await session.commit()
    await events.drain()

    assert await sweep_once(state) == 1
    assert await events.commands() == [(late.id, "cancelled")]
    shown = await detail(client, tokens, late.id)
    assert (shown["status"], shown["message"]) == ("cancelled", "cancelled: the device was revoked")
    assert (await detail(client, tokens, kept))["status"] == "queued"
    assert await sweep_once(state) == 0


# -- the running timeout -----------------------------------------------------------------------


async def test_a_running_command_the_agent_stopped_reporting_on_fails_once(
    app, client, tokens, secret, events: Events, clock: FakeClock
):
    state = app_state(app)
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip"])
    command_id = await create(client, tokens, device.device_id, ["Git.Git", "7zip.7zip"])
    await heartbeat(client, device)
    await progress(client, device, command_id, 1, package_started="Git.Git")
    await events.drain()

    clock.advance(hours=3, minutes=59)
    assert await sweep_once(state) == 0
    # Each step starts the wait again.
    await progress(client, device, command_id, 2, result=result("Git.Git"))
    clock.advance(hours=3, minutes=59)
    assert await sweep_once(state) == 0
    assert (await detail(client, tokens, command_id))["status"] == "running"
    await events.drain()

    clock.advance(minutes=2)
    assert await sweep_once(state) == 1
    assert await events.commands() == [(command_id, "failed")]
    assert await sweep_once(state) == 0  # exactly once
    shown = await detail(client, tokens, command_id)
    assert shown["status"] == "failed"
    assert shown["message"] == "no progress from the agent for 4 h"
    assert shown["finished_at"] is not None
    assert shown["current_package"] is None

    # The agent comes back: what it did is recorded, the command is not brought back.
    step = await progress(client, device, command_id, 3, package_started="7zip.7zip")
    assert step == {"status": "failed"}
    assert (await detail(client, tokens, command_id))["current_package"] is None
    await progress(client, device, command_id, 4, result=result("7zip.7zip", succeeded=False))
    final = await progress(client, device, command_id, 5, status="failed", message="1 of 2")
    assert final == {"status": "failed"}
    shown = await detail(client, tokens, command_id)
    assert shown["status"] == "failed"
    assert shown["message"] == (
        "the agent reported it failed after the server failed it "
        "(no progress from the agent for 4 h): 1 of 2"
    )
    assert [(r["package_identifier"], r["succeeded"]) for r in shown["results"]] == [
        ("Git.Git", True),
        ("7zip.7zip", False),
    ]
    assert await kinds(app, command_id) == [
        "install_started",
        "install_succeeded",
        "install_started",
        "install_failed",
    ]
    assert await sweep_once(state) == 0


async def test_the_running_timeout_follows_the_setting_and_spares_other_statuses(
    app, client, tokens, secret, clock: FakeClock
):
    state = app_state(app)
    state.settings.command_running_timeout_s = 600
    device = await enrolled(client, secret, ["Git.Git", "7zip.7zip", "Mozilla.Firefox"])
    running = await create(client, tokens, device.device_id, ["Git.Git"])
    await heartbeat(client, device)
    await progress(client, device, running, 1)
    sent = await create(client, tokens, device.device_id, ["7zip.7zip"])
    await heartbeat(client, device)
    done = await create(client, tokens, device.device_id, ["Mozilla.Firefox"])
    await heartbeat(client, device)
    await progress(client, device, done, 1, status="succeeded")

    clock.advance(minutes=10)
    assert await sweep_once(state) == 1
    assert (await detail(client, tokens, running))["message"] == (
        "no progress from the agent for 10 min"
    )
    # A sent command waits for its expiry instead; a finished one is left alone.
    assert (await detail(client, tokens, sent))["status"] == "sent"
    assert (await detail(client, tokens, done))["status"] == "succeeded"


async def test_processes_sweeping_together_fail_a_stalled_command_once(
    app, client, tokens, secret, settings, clock: FakeClock
):
    packages = ["Git.Git", "7zip.7zip", "Mozilla.Firefox"]
    device = await enrolled(client, secret, packages)
    stalled = [await create(client, tokens, device.device_id, [p]) for p in packages]
    await heartbeat(client, device)
    for command_id in stalled:
        await progress(client, device, command_id, 1)
    clock.advance(hours=5)
    second = create_app(settings, clock=clock)
    async with LifespanManager(second):
        counts = await asyncio.gather(
            sweep_once(app_state(app)), sweep_once(app_state(second)), sweep_once(app_state(app))
        )
    assert sum(counts) == 3
    for command_id in stalled:
        assert (await detail(client, tokens, command_id))["status"] == "failed"


# -- runs of a package from one source ---------------------------------------------------------


async def report(client: httpx.AsyncClient, device, rows: list[dict]) -> None:
    response = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert response.status_code == 200, response.text


async def run(client: httpx.AsyncClient, tokens: Tokens, package: str, **params: str):
    return await client.post(
        f"/api/updates/{quote(package, safe='')}/run", params=params, headers=tokens.admin
    )


async def test_a_package_run_can_be_limited_to_one_source(client, tokens, secret):
    """The same id in two sources can be two different apps: a run of one leaves the other."""
    same_id = "9WZDNCRFJ3TJ"
    from_winget = await enrolled(client, secret, [], hostname="PC-W")
    await report(client, from_winget, [update_row(same_id, source="winget")])
    from_store = await enrolled(client, secret, [], hostname="PC-S")
    await report(client, from_store, [update_row(same_id, source="msstore")])

    # Without a source: every device waiting for the id.
    both = await run(client, tokens, same_id)
    assert both.status_code == 201
    assert (both.json()["source"], both.json()["total"]) == (None, 2)
    for command in both.json()["items"]:  # withdrawn, so the runs below are not refused
        cancel = await client.post(f"/api/commands/{command['id']}/cancel", headers=tokens.admin)
        assert cancel.is_success
    winget = await run(client, tokens, same_id, source="winget")
    assert winget.status_code == 201, winget.text
    assert (winget.json()["source"], winget.json()["total"]) == ("winget", 1)
    assert [c["hostname"] for c in winget.json()["items"]] == ["PC-W"]
    store = await run(client, tokens, same_id, source="msstore")
    assert [c["hostname"] for c in store.json()["items"]] == ["PC-S"]

    audit = await client.get("/api/audit", headers=tokens.admin, params={"limit": 10})
    runs = [e for e in audit.json()["items"] if e["action"] == "command.create_for_package"]
    assert sorted(str(e["details"]["source"]) for e in runs) == ["None", "msstore", "winget"]


async def test_an_unknown_source_is_refused_and_changes_nothing(client, tokens, secret):
    await enrolled(client, secret, ["Git.Git"])
    unknown = await run(client, tokens, "Git.Git", source="chocolatey")
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("unknown source 'chocolatey': use one of winget, msstore")
    too_long = await run(client, tokens, "Git.Git", source="x" * 65)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_request"
    # A known source nobody reports the package from: nothing to run.
    elsewhere = await run(client, tokens, "Git.Git", source="msstore")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["message"] == (
        "no device is waiting for an update of Git.Git from msstore"
    )
    assert (await client.get("/api/commands", headers=tokens.admin)).json()["total"] == 0

"""The scheduler with the injected clock: a policy's window, its deferral and concurrency,
package rules deciding what is auto, rings waiting for promotion, and each tick queueing
exactly once (two processes, a repeated tick, a tick that failed mid-way)."""

import asyncio
from datetime import UTC, datetime

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from lunaris_server.app import create_app
from lunaris_server.audit.models import AuditEntry
from lunaris_server.commands import scheduled
from lunaris_server.policies import scheduler
from lunaris_server.policies.models import PolicyInstall, SchedulerTick
from tests.policies.helpers import (
    MONDAY_EVENING,
    ROWS,
    commands,
    finish,
    fleet,
    setup_policy,
    spec_of,
    two_rings,
)
from tests.support import (
    FakeClock,
    api_login,
    app_state,
    create_user,
)


async def test_in_its_window_a_policy_queues_the_auto_updates_once(app, admin, clock: FakeClock):
    devices = await fleet(app, admin, ["PC-1", "PC-2"], ROWS)
    policy = await setup_policy(admin)
    state = app_state(app)
    clock.now = datetime(2026, 11, 2, 20, 59, tzinfo=UTC)  # 21:59 in Berlin: shut
    assert await scheduler.tick_once(state) == 0
    assert await commands(app) == []

    clock.now = MONDAY_EVENING
    assert await scheduler.tick_once(state) == 2
    queued = await commands(app)
    assert sorted(c.device_id for c in queued) == sorted(d.device_id for d in devices)
    assert {tuple(c.packages or []) for c in queued} == {("Zoom.Zoom",)}  # Git is manual
    assert {c.created_by for c in queued} == {f"policy:{policy['id']}"}
    # Expires when the window closes, 02:00 in Berlin, and tells the agent to start no
    # install after that; it installs the version the policy decided on, exactly.
    closes = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
    assert {c.expires_at for c in queued} == {closes}
    assert {c.window_ends_at for c in queued} == {closes}
    assert [c.versions for c in queued] == [{"Zoom.Zoom": "6.3"}] * 2

    # The same tick again (another process, a restart) is not this process's to run, and
    # later ticks find nothing new to queue.
    assert await scheduler.tick_once(state) is None
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 0
    assert len(await commands(app)) == 2

    preview = await admin.get(f"/api/policies/{policy['id']}/preview")
    assert preview.json()["installs"] == 0


async def test_a_version_waits_for_the_deferral(app, admin, clock: FakeClock):
    await fleet(app, admin, ["PC-1"], ROWS)
    policy = await setup_policy(admin, deferral_days=3)
    state = app_state(app)
    clock.now = MONDAY_EVENING  # the scheduler sees 6.3 for the first time
    assert await scheduler.tick_once(state) == 0
    preview = (await admin.get(f"/api/policies/{policy['id']}/preview")).json()
    assert (preview["installs"], preview["deferred"]) == (0, 1)
    clock.advance(days=2)  # Wednesday evening: two days
    assert await scheduler.tick_once(state) == 0
    clock.advance(days=1)  # Thursday: three days since it was first seen
    await api_login(admin)
    preview = (await admin.get(f"/api/policies/{policy['id']}/preview")).json()
    assert (preview["installs"], preview["deferred"]) == (1, 0)
    assert preview["summary"] == "This policy would install 1 update on 1 device now."
    assert await scheduler.tick_once(state) == 1


async def test_concurrency_counts_devices_installing_not_offline_ones(app, admin, clock):
    devices = await fleet(app, admin, ["PC-1", "PC-2", "PC-3"], ROWS)
    await setup_policy(admin, max_concurrent=1, window=None)
    state = app_state(app)
    assert await scheduler.tick_once(state) == 1  # PC-1 is online: its command holds the slot
    assert (await commands(app))[0].window_ends_at is None  # always open: no window to end
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 0
    # PC-1 takes and runs it; finished, the slot is free again.
    first = (await commands(app))[0]
    owner = next(d for d in devices if d.device_id == first.device_id)
    beat = await admin.post("/api/agent/heartbeat", json={}, headers=owner.headers)
    assert [c["command_id"] for c in beat.json()["commands"]] == [first.id]
    step = {"sequence": 1, "status": "succeeded"}
    done = await admin.post(
        f"/api/agent/commands/{first.id}/progress", json=step, headers=owner.headers
    )
    assert done.status_code == 200, done.text
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 1
    # Every device offline now: their queued commands hold no slot, so the last one is queued.
    clock.advance(hours=1)
    assert await scheduler.tick_once(state) == 1
    assert len(await commands(app)) == 3


async def test_open_commands_revoked_devices_and_rules_are_respected(app, admin, clock):
    manual, revoked, ignored = await fleet(app, admin, ["PC-1", "PC-2", "PC-3"], ROWS)
    await setup_policy(admin, window=None)
    by_hand = await admin.post(
        f"/api/devices/{manual.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": ["Zoom.Zoom"]},
    )
    assert by_hand.status_code == 201, by_hand.text
    assert (await admin.post(f"/api/devices/{revoked.device_id}/revoke")).status_code == 200
    kiosks = await admin.post(
        "/api/groups", json={"name": "Kiosk", "device_ids": [ignored.device_id]}
    )
    rule = {"package": "Zoom.*", "group_id": kiosks.json()["id"], "action": "ignore"}
    assert (await admin.post("/api/package-rules", json=rule)).status_code == 201
    assert await scheduler.tick_once(app_state(app)) == 0
    assert [c.created_by for c in await commands(app)] == ["user:admin"]


async def test_a_later_ring_waits_for_promotion_and_a_halt_stops_every_ring(app, admin, clock):
    await fleet(app, admin, ["PILOT-1", "PC-1", "PC-2"], ROWS)
    pilot = await admin.post("/api/groups", json={"name": "Pilot", "hostname_glob": "PILOT-*"})
    policy = await setup_policy(admin, window=None)
    everyone = policy["rings"][0]["group_id"]
    rings = [{"group_id": pilot.json()["id"]}, {"group_id": everyone}]
    changed = await admin.put(
        f"/api/policies/{policy['id']}", json={**spec_of(policy), "rings": rings}
    )
    assert changed.status_code == 200, changed.text
    state = app_state(app)
    assert await scheduler.tick_once(state) == 1  # the pilot only
    preview = (await admin.get(f"/api/policies/{policy['id']}/preview")).json()
    assert preview["waiting_for_ring"] == 2
    version = {"package_identifier": "Zoom.Zoom", "source": "winget", "version": "6.3"}
    url = f"/api/policies/{policy['id']}/rollouts"
    halted = await admin.post(f"{url}/halt", json={**version, "reason": "crashes on start"})
    assert halted.status_code == 200, halted.text
    assert halted.json()["halted"] == "crashes on start"
    promoted = await admin.post(f"{url}/promote", json=version)
    assert promoted.json()["reached_ring"] == 1
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 0  # halted
    assert (await admin.post(f"{url}/resume", json=version)).status_code == 200
    clock.advance(minutes=1)
    assert await scheduler.tick_once(state) == 2
    rollout = (await admin.get(url)).json()
    assert [(r["position"], r["devices"]) for r in rollout[0]["rings"]] == [(0, 1), (1, 2)]
    assert (await admin.post(f"{url}/promote", json=version)).status_code == 409  # the last ring


async def test_a_tick_that_fails_midway_leaves_nothing_and_runs_again(app, admin, monkeypatch):
    await fleet(app, admin, ["PC-1"], ROWS)
    await setup_policy(admin, window=None)
    real = scheduled.queue

    async def fails(*args: object, **kwargs: object) -> object:
        await real(*args, **kwargs)  # type: ignore[arg-type]
        raise ConnectionError("the database went away")

    monkeypatch.setattr(scheduled, "queue", fails)
    with pytest.raises(ConnectionError):
        await scheduler.tick_once(app_state(app))
    assert await commands(app) == []
    monkeypatch.setattr(scheduled, "queue", real)
    assert await scheduler.tick_once(app_state(app)) == 1  # the same tick, run again


async def test_two_processes_run_each_tick_once(app, admin, settings, clock, backend):
    await fleet(app, admin, [f"PC-{n}" for n in range(5)], ROWS)
    await setup_policy(admin, window=None)
    other = create_app(settings, clock=clock)
    async with LifespanManager(other):
        runs = await asyncio.gather(
            scheduler.tick_once(app_state(app)), scheduler.tick_once(app_state(other))
        )
    assert sorted(runs, key=lambda r: r is None) == [5, None]
    async with app_state(app).database.session() as session:
        assert await session.scalar(select(func.count()).select_from(PolicyInstall)) == 5
        assert await session.scalar(select(func.count()).select_from(SchedulerTick)) == 1
    assert len(await commands(app)) == 5


async def test_policies_are_checked_and_need_an_admin(app, admin, client):
    group = (await admin.post("/api/groups", json={"name": "G"})).json()
    base = {"name": "P", "rings": [{"group_id": group["id"]}]}
    for body, why in (
        ({**base, "time_zone": "Mars/Base"}, "not a time zone"),
        ({**base, "rings": []}, "rings"),
        ({**base, "rings": [{"group_id": 99}]}, "no group"),
        ({**base, "window": {"days": ["mon"], "start": "25:00", "duration_minutes": 60}}, "start"),
        ({**base, "window": {"days": [], "start": "22:00", "duration_minutes": 60}}, "days"),
        ({**base, "colour": "red"}, "colour"),
    ):
        refused = await admin.post("/api/policies", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert why in refused.text
    assert (await admin.get("/api/policies")).json() == []
    made = await admin.post("/api/policies", json=base)
    assert made.status_code == 201
    in_use = await admin.delete(f"/api/groups/{group['id']}")
    assert in_use.status_code == 409
    await create_user(app, "vera", "viewer password", role="viewer")
    await api_login(client, "vera", "viewer password")
    assert (await client.get("/api/policies")).status_code == 200
    assert (await client.post("/api/policies", json={**base, "name": "Q"})).status_code == 403


GATE = {"soak_hours": 24, "min_devices": 2, "min_success_percent": 100, "halt_failure_percent": 40}


async def test_a_version_moves_on_once_the_ring_before_passed_its_gate(app, admin, clock):
    pilots = await fleet(app, admin, ["PILOT-1", "PILOT-2"], ROWS)
    await fleet(app, admin, ["PC-1", "PC-2", "PC-3"], ROWS)
    policy = await two_rings(admin, **GATE)
    state = app_state(app)
    assert await scheduler.tick_once(state) == 2  # the pilots
    await finish(admin, pilots[0], "succeeded")
    clock.advance(hours=1)
    assert await scheduler.tick_once(state) == 0  # one done: not enough, and not soaked
    await finish(admin, pilots[1], "succeeded")
    clock.advance(hours=22)
    assert await scheduler.tick_once(state) == 0  # both done, 23 hours: not soaked yet
    clock.advance(hours=1)
    assert await scheduler.tick_once(state) == 3  # promoted: everyone else
    await api_login(admin)
    rollout = (await admin.get(f"/api/policies/{policy['id']}/rollouts")).json()[0]
    assert rollout["reached_ring"] == 1
    async with app_state(app).database.session() as session:
        by = await session.scalar(
            select(AuditEntry.actor).where(AuditEntry.action == "rollout.promote")
        )
    assert by == "scheduler"


async def test_failures_past_the_limit_halt_the_version_everywhere(app, admin, clock):
    pilots = await fleet(app, admin, ["PILOT-1", "PILOT-2"], ROWS)
    await fleet(app, admin, ["PC-1"], ROWS)
    policy = await two_rings(admin, **GATE)
    state = app_state(app)
    assert await scheduler.tick_once(state) == 2
    await finish(admin, pilots[0], "succeeded")
    await finish(admin, pilots[1], "failed")
    clock.advance(days=2)
    assert await scheduler.tick_once(state) == 0
    await api_login(admin)
    rollout = (await admin.get(f"/api/policies/{policy['id']}/rollouts")).json()[0]
    assert rollout["halted"] == "1 of 2 installs in ring 1 failed, more than 40%"
    assert rollout["reached_ring"] == 0


async def test_a_tick_queues_a_bounded_number_of_devices(app, admin, settings, clock):
    await fleet(app, admin, [f"PC-{n}" for n in range(5)], ROWS)
    await setup_policy(admin, window=None)
    small = create_app(
        settings.model_copy(update={"scheduler_max_devices_per_tick": 2}), clock=clock
    )
    async with LifespanManager(small):
        state = app_state(small)
        assert await scheduler.tick_once(state) == 2
        clock.advance(minutes=1)
        assert await scheduler.tick_once(state) == 2
        clock.advance(minutes=1)
        assert await scheduler.tick_once(state) == 1
    assert len(await commands(app)) == 5

"""The dashboard's aggregate queries, on SQLite and PostgreSQL."""

from datetime import timedelta

from lunaris_server.dashboard import service as dashboard
from tests.support import app_state, create_secret, register_device, update_row


async def report(client, device, packages):
    response = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row(p) for p in packages]},
        headers=device.headers,
    )
    assert response.status_code == 200


async def test_daily_activity_counts_detected_and_resolved_per_day(app, client, clock):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    clock.advance(days=-3)
    await report(client, device, ["A.A", "B.B", "C.C"])  # 3 detected, three days ago
    clock.advance(days=2)
    await report(client, device, ["A.A"])  # 2 resolved, yesterday
    clock.advance(days=1)
    await report(client, device, ["A.A", "D.D"])  # 1 detected, today
    state = app_state(app)
    async with state.database.session() as session:
        activity = await dashboard.daily_activity(session, now=clock.now)
    assert len(activity.days) == dashboard.ACTIVITY_DAYS
    assert activity.days[-1] == clock.now.date()
    assert activity.detected[-4:] == [3, 0, 0, 1]
    assert activity.resolved[-4:] == [0, 0, 2, 0]
    assert sum(activity.detected) == 4


async def test_events_older_than_the_window_are_left_out(app, client, clock):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    clock.advance(days=-40)
    await report(client, device, ["A.A"])
    clock.advance(days=40)
    state = app_state(app)
    async with state.database.session() as session:
        activity = await dashboard.daily_activity(session, now=clock.now)
    assert sum(activity.detected) == 0


async def test_fleet_stats_count_online_offline_and_errors(app, client, clock):
    secret = await create_secret(app)
    quiet = await register_device(client, secret, hostname="QUIET")
    clock.advance(hours=1)
    busy = await register_device(client, secret, hostname="BUSY")
    await report(client, busy, ["A.A", "B.B"])
    failed = {"scan_error": {"code": "x", "message": "failed"}}
    await client.post("/api/agent/update-report", json=failed, headers=quiet.headers)
    clock.advance(seconds=1)
    state = app_state(app)
    async with state.database.session() as session:
        stats = await dashboard.fleet_stats(session, liveness=state.liveness, now=clock.now)
    # The failed report counts as contact, so both are online; an hour later neither is.
    assert (stats.devices, stats.online, stats.offline) == (2, 2, 0)
    assert (stats.with_updates, stats.pending_updates, stats.scan_errors) == (1, 2, 1)
    async with state.database.session() as session:
        later = await dashboard.fleet_stats(
            session, liveness=state.liveness, now=clock.now + timedelta(hours=1)
        )
    assert (later.online, later.offline) == (0, 2)

"""A policy whose window keeps each device's own clock: a PC in Berlin installs in its
night, one in New York in its own, one that reports no time zone (or one the zoneinfo
database does not know) in the policy's zone; each command expires, and tells its agent to
start nothing, when that device's window closes."""

from datetime import UTC, datetime

import httpx

from lunaris_server.policies import scheduler
from tests.policies.helpers import ROWS, commands, console_with_a_group, fleet, setup_policy
from tests.support import FakeClock, app_state, create_user

NIGHT = {"days": ["mon"], "start": "22:00", "duration_minutes": 240}
ZONES = {"BER": "Europe/Berlin", "NYC": "America/New_York", "ODD": "Mars/Olympus"}


async def test_each_device_installs_in_its_own_night(app, admin, clock: FakeClock):
    devices = await fleet(app, admin, ["BER", "NYC", "ODD", "NONE"], ROWS, zones=ZONES)
    ids = dict(zip(["BER", "NYC", "ODD", "NONE"], (d.device_id for d in devices), strict=True))
    body = {"window": NIGHT, "time_zone": "UTC", "local_time": True}
    policy = await setup_policy(admin, **body)
    assert policy["local_time"] is True
    assert policy["window_text"] == (
        "Mon from 22:00 for 4 h (each device's local time; UTC where it reports none)"
    )
    state = app_state(app)

    async def queued() -> dict[str, datetime]:
        found = {c.device_id: c for c in await commands(app)}
        for command in found.values():
            assert command.window_ends_at == command.expires_at
        names = {device_id: name for name, device_id in ids.items()}
        return {names[d]: c.expires_at for d, c in found.items()}

    clock.now = datetime(2026, 11, 2, 20, 30, tzinfo=UTC)  # 21:30 in Berlin: shut everywhere
    assert await scheduler.tick_once(state) == 0
    clock.now = datetime(2026, 11, 2, 21, 30, tzinfo=UTC)  # 22:30 in Berlin
    assert await scheduler.tick_once(state) == 1
    assert await queued() == {"BER": datetime(2026, 11, 3, 1, 0, tzinfo=UTC)}  # 02:00 Berlin
    clock.now = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)  # 22:30 UTC
    assert await scheduler.tick_once(state) == 2  # the two the policy's zone applies to
    closes_utc = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    assert await queued() == {
        "BER": datetime(2026, 11, 3, 1, 0, tzinfo=UTC),
        "ODD": closes_utc,
        "NONE": closes_utc,
    }
    clock.now = datetime(2026, 11, 3, 3, 30, tzinfo=UTC)  # 22:30 on Monday in New York
    assert await scheduler.tick_once(state) == 1
    assert (await queued())["NYC"] == datetime(2026, 11, 3, 7, 0, tzinfo=UTC)  # 02:00 there


async def test_a_device_that_moves_takes_its_window_along(app, admin, clock: FakeClock):
    (laptop,) = await fleet(app, admin, ["LAPTOP"], ROWS, zones={"LAPTOP": "Europe/Berlin"})
    await setup_policy(admin, window=NIGHT, time_zone="UTC", local_time=True)
    # The laptop flies to New York before its night in Berlin.
    moved = {"time_zone": "America/New_York"}
    beat = await admin.post("/api/agent/heartbeat", json=moved, headers=laptop.headers)
    assert beat.status_code == 200, beat.text
    state = app_state(app)
    clock.now = datetime(2026, 11, 2, 21, 30, tzinfo=UTC)  # 22:30 in Berlin, 16:30 in NY
    assert await scheduler.tick_once(state) == 0
    clock.now = datetime(2026, 11, 3, 3, 30, tzinfo=UTC)  # 22:30 in New York
    assert await scheduler.tick_once(state) == 1


async def test_the_policy_form_sets_and_shows_local_time(app):
    await create_user(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin:
        token, group_id = await console_with_a_group(admin)
        form = {
            "name": "Nightly",
            "enabled": "yes",
            "day": "mon",
            "start": "22:00",
            "duration_hours": "4",
            "time_zone": "Europe/Berlin",
            "local_time": "yes",
            "ring0_group": str(group_id),
            "csrf_token": token,
        }
        saved = await admin.post("/policies", data=form)
        assert saved.status_code == 303, saved.text
        (policy,) = (await admin.get("/api/policies")).json()
        assert (policy["local_time"], policy["time_zone"]) == (True, "Europe/Berlin")
        page = (await admin.get(saved.headers["location"])).text
        assert 'name="local_time" value="yes" checked' in page
        assert "each device&#39;s local time; Europe/Berlin where it reports none" in page
        form.pop("local_time")
        changed = await admin.post(f"/policies/{policy['id']}", data=form)
        assert changed.status_code == 303, changed.text
        assert (await admin.get(f"/api/policies/{policy['id']}")).json()["local_time"] is False

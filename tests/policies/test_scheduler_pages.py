"""A tick reads the waiting updates a page at a time and stops once it has its devices; the
next tick goes on after the last device queued, then comes round to the first ones again.
Pages of one row here, so every device's rows span pages."""

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from lunaris_server.app import create_app
from lunaris_server.commands.models import Command
from lunaris_server.policies import planning, scheduler
from tests.policies.helpers import ROWS, fleet, setup_policy
from tests.support import app_state, update_row

TWO_AUTO = [*ROWS, update_row("7zip.7zip", "23.01", "24.08")]


@pytest.fixture(autouse=True)
def one_row_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "MIN_ROWS_PER_PAGE", 1)


async def five_devices_two_auto_updates_each(app, admin) -> tuple[list, dict]:
    devices = await fleet(app, admin, [f"PC-{n}" for n in range(5)], TWO_AUTO)
    policy = await setup_policy(admin, window=None)
    rule = {"package": "7zip.7zip", "action": "auto"}
    assert (await admin.post("/api/package-rules", json=rule)).status_code == 201
    return devices, policy


async def ticks(state, clock, count: int) -> list[int | None]:
    """What each of ``count`` ticks, a minute apart, queued."""
    queued = []
    for _ in range(count):
        queued.append(await scheduler.tick_once(state))
        clock.advance(minutes=1)
    return queued


async def test_ticks_page_through_the_fleet_and_come_round_again(app, admin, settings, clock):
    devices, policy = await five_devices_two_auto_updates_each(app, admin)
    preview = (await admin.get(f"/api/policies/{policy['id']}/preview")).json()
    assert (preview["installs"], preview["devices"]) == (10, 5)

    small = create_app(
        settings.model_copy(update={"scheduler_max_devices_per_tick": 2}), clock=clock
    )
    async with LifespanManager(small):
        state = app_state(small)
        assert await ticks(state, clock, 3) == [4, 4, 2]
        async with state.database.session() as session:
            found = list(
                await session.scalars(
                    select(Command).order_by(Command.created_at, Command.device_id)
                )
            )
        ids = sorted(d.device_id for d in devices)
        # In id order, two devices a tick; a command per version, each in its deployment.
        assert [c.device_id for c in found[::2]] == ids
        assert [c.device_id for c in found[1::2]] == ids
        assert {tuple(c.packages or []) for c in found} == {("7zip.7zip",), ("Zoom.Zoom",)}
        assert len({c.deployment_id for c in found}) == 2

        # A new version on the first device: found once the ticks come round to it.
        first = next(d for d in devices if d.device_id == ids[0])
        newer = [update_row("Zoom.Zoom", "6.2", "6.4"), TWO_AUTO[1], TWO_AUTO[2]]
        sent = await admin.post(
            "/api/agent/update-report", json={"updates": newer}, headers=first.headers
        )
        assert sent.status_code == 200, sent.text
        assert await scheduler.tick_once(state) == 0  # its Zoom 6.3 command is still open
        async with state.database.session() as session:
            zoom = next(c for c in found if c.packages == ["Zoom.Zoom"])
            command = await session.get(Command, zoom.id)
            assert command is not None
            command.status = "succeeded"
            await session.commit()
        clock.advance(minutes=1)
        assert await scheduler.tick_once(state) == 1
        clock.advance(minutes=1)
        assert await scheduler.tick_once(state) == 0


async def test_a_tick_stops_taking_devices_at_its_bound_on_installs(app, admin, settings, clock):
    await five_devices_two_auto_updates_each(app, admin)
    bounds = {"scheduler_max_devices_per_tick": 100, "scheduler_max_installs_per_tick": 3}
    small = create_app(settings.model_copy(update=bounds), clock=clock)
    async with LifespanManager(small):
        # Two installs a device, kept together: the second device takes a tick past 3.
        assert await ticks(app_state(small), clock, 4) == [4, 4, 2, 0]

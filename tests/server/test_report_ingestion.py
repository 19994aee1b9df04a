"""What an update report costs and whom it speaks for: the token is checked by the report's
first statement, an identical report writes only the device row, a report from a device
announced offline brings it back online, and one device's reports never interleave."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from lunaris_protocol import ConsoleEvent
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices import service as devices
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device
from lunaris_server.updates.models import DeviceUpdate
from tests.server.test_fleet_counts import assert_counts_fresh
from tests.support import app_state, create_secret, register_device, update_row


async def report(client, device, rows, *, status=200):
    response = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert response.status_code == status, response.text
    return response.json()


async def load_device(app, device_id) -> Device:
    async with app_state(app).database.session() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


class Statements:
    """The SQL statements the server runs, as (verb, table) pairs."""

    def __init__(self, app):
        self.seen: list[tuple[str, str]] = []
        self._engine = app_state(app).database.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, _parameters, _context, _executemany):
        words = statement.split()
        verb = words[0].upper()
        if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            return
        marker = {"UPDATE": 1, "INSERT": 2, "DELETE": 2}.get(verb)
        table = words[marker] if marker else words[words.index("FROM") + 1]
        self.seen.append((verb, table.strip('"')))

    def during(self):
        self.seen.clear()
        return self

    def close(self):
        event.remove(self._engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(app):
    recorder = Statements(app)
    yield recorder
    recorder.close()


async def test_identical_report_writes_only_the_device_row(app, client, clock, statements):
    device = await register_device(client, await create_secret(app))
    rows = [update_row("Git.Git", "2.31.0", "2.33.0"), update_row("7zip.7zip", "19.00", "23.01")]
    await report(client, device, rows)
    clock.advance(minutes=60)
    statements.during()
    assert (await report(client, device, rows))["unchanged"] == 2
    assert statements.seen == [("UPDATE", "devices"), ("SELECT", "device_updates")]
    stored = await load_device(app, device.device_id)
    assert (stored.last_seen_at, stored.last_scan_at, stored.updates_count) == (
        clock.now,
        clock.now,
        2,
    )


async def test_a_new_version_touches_its_row_event_and_counters(app, client, statements):
    device = await register_device(client, await create_secret(app))
    other = await register_device(client, await create_secret(app, name="other"))
    rows = [update_row("Git.Git", "2.31.0", "2.33.0"), update_row("7zip.7zip", "19.00", "23.01")]
    await report(client, device, rows)
    await report(client, other, rows)
    statements.during()
    await report(client, device, [rows[0], update_row("7zip.7zip", "19.00", "24.08")])
    # The old variant still counts the other device: no counter reached zero, none deleted.
    assert statements.seen == [
        ("UPDATE", "devices"),
        ("SELECT", "device_updates"),
        ("UPDATE", "device_updates"),
        ("INSERT", "update_events"),
        ("INSERT", "fleet_variants"),
    ]
    statements.during()
    await report(client, other, [rows[0], update_row("7zip.7zip", "19.00", "24.08")])
    assert ("DELETE", "fleet_variants") in statements.seen  # now it did
    await assert_counts_fresh(app_state(app).database)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer lnd_not-a-real-token"}, {"Authorization": "Basic abc"}],
)
async def test_reports_without_a_valid_token_are_refused(app, client, headers):
    response = await client.post(
        "/api/agent/update-report", json={"updates": [update_row("Git.Git")]}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    async with app_state(app).database.session() as session:
        assert list(await session.scalars(select(DeviceUpdate))) == []


async def test_a_revoked_device_reports_nothing(app, client, clock):
    device = await register_device(client, await create_secret(app))
    await report(client, device, [update_row("Git.Git")])
    state = app_state(app)
    async with state.database.session() as session:
        await devices.revoke(
            session,
            device_id=device.device_id,
            now=clock.now,
            actor=CLI_ACTOR,
            lifecycle=state.part(DeviceLifecycle),
        )
        await session.commit()
    before = await load_device(app, device.device_id)
    clock.advance(minutes=5)
    await report(client, device, [], status=401)
    after = await load_device(app, device.device_id)
    assert (after.last_seen_at, after.last_scan_at, after.updates_count) == (
        before.last_seen_at,
        before.last_scan_at,
        1,
    )


async def test_report_from_a_device_announced_offline_brings_it_back(app, client, clock):
    device = await register_device(client, await create_secret(app))
    state = app_state(app)
    clock.advance(hours=2)
    async with state.database.session() as session:
        liveness = Liveness(offline_after=timedelta(minutes=5))
        gone = await devices.mark_offline(session, liveness=liveness, now=clock.now)
        await session.commit()
    assert [d.id for d in gone] == [device.device_id]
    announced: list[ConsoleEvent] = []
    state.realtime.on_local_event(announced.append)

    await report(client, device, [update_row("Git.Git")])
    assert [e.type for e in announced] == ["DEVICE_STATUS_UPDATE", "DEVICE_UPDATES_CHANGED"]
    status = announced[0].model_dump(mode="json")["data"]
    assert (status["device_id"], status["status"]) == (device.device_id, "online")
    stored = await load_device(app, device.device_id)
    assert (stored.announced_status, stored.last_seen_at) == ("online", clock.now)

    announced.clear()
    await report(client, device, [update_row("Git.Git")])
    assert announced == []  # online already, nothing changed


async def test_one_devices_reports_at_once_do_not_interleave(app, client):
    """Each report locks its device row first, then reads the rows: the second reads what the
    first wrote, whatever order they take (PostgreSQL runs them in parallel)."""
    device = await register_device(client, await create_secret(app))
    await report(client, device, [update_row(f"Vendor.App{n}") for n in range(10)])
    for round_ in range(5):
        first = [update_row(f"Vendor.App{n}", "1.0", f"3.{round_}") for n in range(0, 10, 2)]
        second = [update_row(f"Vendor.App{n}", "1.1", "2.0") for n in range(5, 12)]
        await asyncio.gather(report(client, device, first), report(client, device, second))
        async with app_state(app).database.session() as session:
            stored = await session.execute(
                select(DeviceUpdate.package_identifier, DeviceUpdate.installed_version).where(
                    DeviceUpdate.device_id == device.device_id
                )
            )
            stored_rows = sorted(tuple(row) for row in stored)
        assert stored_rows in (
            sorted((r["package_identifier"], r["installed_version"]) for r in first),
            sorted((r["package_identifier"], r["installed_version"]) for r in second),
        )
        assert (await load_device(app, device.device_id)).updates_count == len(stored_rows)
        await assert_counts_fresh(app_state(app).database)

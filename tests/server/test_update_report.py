"""The update-report diff: inserts, changes, removals, no-ops and scan errors."""

from sqlalchemy import select

from lunaris_server.devices.models import Device
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent
from tests.support import api_login, app_state, create_secret, register_device, update_row


async def report(client, device, rows, scan_error=None):
    response = await client.post(
        "/api/agent/update-report",
        json={"updates": rows, "scan_error": scan_error},
        headers=device.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def stored_rows(app, device_id):
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(DeviceUpdate)
            .where(DeviceUpdate.device_id == device_id)
            .order_by(DeviceUpdate.package_identifier, DeviceUpdate.installed_version)
        )
        return [
            (r.package_identifier, r.installed_version, r.available_version, r.instances)
            for r in rows
        ]


async def events(app, device_id):
    async with app_state(app).database.session() as session:
        rows = await session.scalars(
            select(UpdateEvent).where(UpdateEvent.device_id == device_id).order_by(UpdateEvent.id)
        )
        return [(e.kind, e.package_identifier, e.from_version, e.to_version) for e in rows]


async def device_row(app, device_id) -> Device:
    async with app_state(app).database.session() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


async def setup(app, client):
    secret = await create_secret(app)
    return await register_device(client, secret)


async def test_first_report_inserts_rows_and_detected_events(app, client):
    device = await setup(app, client)
    rows = [update_row("Git.Git", "2.31.0", "2.33.0"), update_row("7zip.7zip", "19.00", "23.01")]
    assert await report(client, device, rows) == {
        "added": 2,
        "changed": 0,
        "removed": 0,
        "unchanged": 0,
    }
    assert await stored_rows(app, device.device_id) == [
        ("7zip.7zip", "19.00", "23.01", 1),
        ("Git.Git", "2.31.0", "2.33.0", 1),
    ]
    assert sorted(await events(app, device.device_id)) == [
        ("detected", "7zip.7zip", "19.00", "23.01"),
        ("detected", "Git.Git", "2.31.0", "2.33.0"),
    ]
    assert (await device_row(app, device.device_id)).updates_count == 2


async def test_identical_report_writes_nothing_but_last_seen(app, client, clock):
    device = await setup(app, client)
    rows = [update_row("Git.Git", "2.31.0", "2.33.0")]
    await report(client, device, rows)
    before_rows, before_events = (
        await stored_rows(app, device.device_id),
        await events(app, device.device_id),
    )
    clock.advance(minutes=5)
    outcome = await report(client, device, rows)
    assert outcome == {"added": 0, "changed": 0, "removed": 0, "unchanged": 1}
    assert await stored_rows(app, device.device_id) == before_rows
    assert await events(app, device.device_id) == before_events
    assert (await device_row(app, device.device_id)).last_seen_at == clock.now


async def test_new_available_version_is_a_change(app, client):
    device = await setup(app, client)
    await report(client, device, [update_row("Git.Git", "2.31.0", "2.33.0")])
    outcome = await report(client, device, [update_row("Git.Git", "2.31.0", "2.34.1")])
    assert (outcome["changed"], outcome["added"], outcome["removed"]) == (1, 0, 0)
    assert await stored_rows(app, device.device_id) == [("Git.Git", "2.31.0", "2.34.1", 1)]
    assert (await events(app, device.device_id))[-1] == (
        "version_changed",
        "Git.Git",
        "2.31.0",
        "2.34.1",
    )


async def test_partial_upgrade_moves_the_installed_version(app, client):
    device = await setup(app, client)
    await report(client, device, [update_row("Git.Git", "2.31.0", "2.34.1")])
    outcome = await report(client, device, [update_row("Git.Git", "2.33.0", "2.34.1")])
    assert (outcome["changed"], outcome["added"], outcome["removed"]) == (1, 0, 0)
    assert await stored_rows(app, device.device_id) == [("Git.Git", "2.33.0", "2.34.1", 1)]
    assert [e[0] for e in await events(app, device.device_id)] == ["detected", "version_changed"]


async def test_missing_row_is_resolved(app, client):
    device = await setup(app, client)
    await report(
        client,
        device,
        [update_row("Git.Git", "2.31.0", "2.33.0"), update_row("7zip.7zip", "19.00", "23.01")],
    )
    outcome = await report(client, device, [update_row("Git.Git", "2.31.0", "2.33.0")])
    assert outcome == {"added": 0, "changed": 0, "removed": 1, "unchanged": 1}
    assert await stored_rows(app, device.device_id) == [("Git.Git", "2.31.0", "2.33.0", 1)]
    assert (await events(app, device.device_id))[-1] == ("resolved", "7zip.7zip", "19.00", "23.01")
    assert (await device_row(app, device.device_id)).updates_count == 1
    await report(client, device, [])
    assert await stored_rows(app, device.device_id) == []
    assert (await device_row(app, device.device_id)).updates_count == 0


async def test_two_installs_of_one_package_are_two_rows_and_exact_duplicates_collapse(app, client):
    device = await setup(app, client)
    rows = [
        update_row("Microsoft.VCRedist.2015+.x64", "14.29.30133", "14.38.33135"),
        update_row("Microsoft.VCRedist.2015+.x64", "14.30.30704", "14.38.33135"),
        update_row("Microsoft.VCRedist.2015+.x64", "14.30.30704", "14.38.33135"),
    ]
    outcome = await report(client, device, rows)
    assert outcome["added"] == 2
    assert await stored_rows(app, device.device_id) == [
        ("Microsoft.VCRedist.2015+.x64", "14.29.30133", "14.38.33135", 1),
        ("Microsoft.VCRedist.2015+.x64", "14.30.30704", "14.38.33135", 2),
    ]
    # The same report again is a no-op, instance counts included.
    assert (await report(client, device, rows))["unchanged"] == 2


async def test_flags_and_null_source_round_trip(app, client):
    device = await setup(app, client)
    rows = [
        update_row("Discord.Discord", "1.0.9017", "1.0.9034", explicit_targeting=True),
        update_row("Microsoft.WindowsAppRu…", "< 1.4.3", "1.4.3", truncated=True, source=None),
    ]
    await report(client, device, rows)
    from tests.support import create_user

    await create_user(app)
    await api_login(client)
    items = (await client.get(f"/api/devices/{device.device_id}/updates")).json()["items"]
    by_id = {i["package_identifier"]: i for i in items}
    assert by_id["Discord.Discord"]["explicit_targeting"] is True
    assert by_id["Microsoft.WindowsAppRu…"]["truncated"] is True
    assert by_id["Microsoft.WindowsAppRu…"]["source"] is None
    assert by_id["Microsoft.WindowsAppRu…"]["installed_version"] == "< 1.4.3"


async def test_scan_error_is_recorded_and_keeps_previous_list(app, client):
    device = await setup(app, client)
    rows = [update_row("Git.Git", "2.31.0", "2.33.0")]
    await report(client, device, rows)
    error = {"code": "0x8A15000F", "message": "Data required by the source is missing"}
    outcome = await report(client, device, [], scan_error=error)
    assert (outcome["removed"], outcome["unchanged"]) == (0, 1)
    assert await stored_rows(app, device.device_id) == [("Git.Git", "2.31.0", "2.33.0", 1)]
    stored = await device_row(app, device.device_id)
    assert (stored.scan_error_code, stored.updates_count) == ("0x8A15000F", 1)
    assert [e[0] for e in await events(app, device.device_id)] == ["detected"]
    # The next good scan clears the error.
    await report(client, device, rows)
    assert (await device_row(app, device.device_id)).scan_error_code is None

"""Inventory reports: the baseline, the diff and its history, the digest that stands for a
list, failures, and the counts against a fresh aggregation."""

import asyncio
import random

from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.devices import service as device_service
from lunaris_server.devices.lifecycle import DeviceLifecycle
from tests.software.helpers import (
    assert_counts_fresh,
    digest_of,
    installed,
    inventory_of,
    report_digest,
    report_list,
    send,
    software_events,
    stored,
)
from tests.support import app_state, create_secret, register_device

BASE = [
    installed("Notepad++.Notepad++", "8.6.2", "Notepad++ (64-bit x64)", source="winget"),
    installed("7zip.7zip", "23.01", "7-Zip 23.01 (x64)", source="winget"),
    installed("Adobe AIR", "32.0.0.125"),
]


async def test_the_first_list_is_a_baseline_without_history(app, client):
    device = await register_device(client, await create_secret(app))
    outcome = await report_list(client, device, BASE)
    assert outcome == {
        "full_list_needed": False,
        "added": 3,
        "changed": 0,
        "removed": 0,
        "unchanged": 0,
    }
    assert await stored(app, device.device_id) == [
        ("7zip.7zip", "winget", "23.01", 1),
        ("Adobe AIR", None, "32.0.0.125", 1),
        ("Notepad++.Notepad++", "winget", "8.6.2", 1),
    ]
    assert await software_events(app, device.device_id) == []
    inventory = await inventory_of(app, device.device_id)
    assert inventory is not None
    assert (inventory.digest, inventory.apps) == (digest_of(BASE), 3)
    titles, versions = await assert_counts_fresh(app_state(app).database)
    assert titles == {"Notepad++.Notepad++": 1, "7zip.7zip": 1, "Adobe AIR": 1}
    assert versions[("7zip.7zip", "23.01")] == 1


async def test_a_known_digest_alone_records_the_report_and_changes_nothing(app, client, clock):
    device = await register_device(client, await create_secret(app))
    await report_list(client, device, BASE)
    first = await inventory_of(app, device.device_id)
    assert first is not None
    clock.advance(seconds=3600)
    # The same list in another order has the same digest.
    assert (await report_digest(client, device, list(reversed(BASE))))["full_list_needed"] is False
    later = await inventory_of(app, device.device_id)
    assert later is not None
    assert first.reported_at is not None
    assert later.reported_at is not None
    assert (later.reported_at - first.reported_at).total_seconds() == 3600
    assert later.changed_at == first.changed_at
    assert len(await stored(app, device.device_id)) == 3


async def test_an_unknown_digest_asks_for_the_list_and_changes_nothing(app, client, clock):
    device = await register_device(client, await create_secret(app))
    # Before any list, and after one that differs.
    assert (await report_digest(client, device, BASE))["full_list_needed"] is True
    assert await inventory_of(app, device.device_id) is None
    await report_list(client, device, BASE)
    before = await inventory_of(app, device.device_id)
    clock.advance(seconds=60)
    assert (await report_digest(client, device, BASE[:2]))["full_list_needed"] is True
    after = await inventory_of(app, device.device_id)
    assert before is not None
    assert after is not None
    assert after.reported_at == before.reported_at
    assert len(await stored(app, device.device_id)) == 3


async def test_changes_are_history_installed_removed_and_version_changed(app, client):
    device = await register_device(client, await create_secret(app))
    await report_list(client, device, BASE)
    changed = [
        installed("Notepad++.Notepad++", "8.8", "Notepad++ (64-bit x64)", source="winget"),
        installed("Adobe AIR", "32.0.0.125"),
        installed("Git.Git", "2.47.1", "Git", source="winget"),
    ]
    outcome = await report_list(client, device, changed)
    assert outcome == {
        "full_list_needed": False,
        "added": 1,
        "changed": 1,
        "removed": 1,
        "unchanged": 1,
    }
    assert sorted(await software_events(app, device.device_id)) == [
        ("software_installed", "Git.Git", "", "2.47.1"),
        ("software_removed", "7zip.7zip", "23.01", ""),
        ("software_version_changed", "Notepad++.Notepad++", "8.6.2", "8.8"),
    ]
    titles, versions = await assert_counts_fresh(app_state(app).database)
    assert "7zip.7zip" not in titles
    assert ("Notepad++.Notepad++", "8.6.2") not in versions
    assert versions[("Notepad++.Notepad++", "8.8")] == 1


async def test_duplicates_collapse_and_side_by_side_versions_stay_apart(app, client):
    device = await register_device(client, await create_secret(app))
    rows = [
        installed("Microsoft.DotNet.DesktopRuntime.8", "8.0.11", source="winget"),
        installed("Microsoft.DotNet.DesktopRuntime.8", "8.0.8", source="winget"),
        installed("Adobe AIR", "32.0.0.125"),
        installed("Adobe AIR", "32.0.0.125"),
    ]
    await report_list(client, device, rows)
    assert await stored(app, device.device_id) == [
        ("Adobe AIR", None, "32.0.0.125", 2),
        ("Microsoft.DotNet.DesktopRuntime.8", "winget", "8.0.11", 1),
        ("Microsoft.DotNet.DesktopRuntime.8", "winget", "8.0.8", 1),
    ]
    titles, _ = await assert_counts_fresh(app_state(app).database)
    assert titles["Microsoft.DotNet.DesktopRuntime.8"] == 1  # one device, two versions
    # One of the two upgraded: the older moved, the newer stayed.
    await report_list(
        client, device, [installed("Microsoft.DotNet.DesktopRuntime.8", "8.0.11", source="winget")]
    )
    assert sorted(await software_events(app, device.device_id)) == [
        ("software_removed", "Adobe AIR", "32.0.0.125", ""),
        ("software_removed", "Microsoft.DotNet.DesktopRuntime.8", "8.0.8", ""),
    ]
    await assert_counts_fresh(app_state(app).database)


async def test_a_failed_list_keeps_the_last_one(app, client, clock):
    device = await register_device(client, await create_secret(app))
    await report_list(client, device, BASE)
    clock.advance(seconds=60)
    failed = await send(
        client, device, {"scan_error": {"code": "0x8A15000F", "message": "source failed"}}
    )
    assert failed.status_code == 200, failed.text
    inventory = await inventory_of(app, device.device_id)
    assert inventory is not None
    assert (inventory.error_code, inventory.digest) == ("0x8A15000F", digest_of(BASE))
    assert len(await stored(app, device.device_id)) == 3
    # The next good list clears the failure.
    await report_list(client, device, BASE)
    inventory = await inventory_of(app, device.device_id)
    assert inventory is not None
    assert inventory.error_code is None


async def test_bad_reports_are_refused_and_change_nothing(app, client):
    device = await register_device(client, await create_secret(app))
    await report_list(client, device, BASE)
    bodies = [
        {},
        {"software": BASE, "scan_error": {"message": "x"}},
        {"digest": "not-hex"},
        {"software": [{**BASE[0], "extra": 1}]},
        {"software": [installed("A\u202eB", "1")]},
        {"software": [installed("A", "1")] * 5001},
    ]
    for body in bodies:
        response = await send(client, device, body)
        assert response.status_code == 422, (body, response.text)
    assert len(await stored(app, device.device_id)) == 3
    inventory = await inventory_of(app, device.device_id)
    assert inventory is not None
    assert inventory.digest == digest_of(BASE)


async def test_unknown_and_revoked_tokens_are_refused(app, client, clock):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    await report_list(client, device, BASE)
    stranger = {"Authorization": "Bearer lnd_nobody"}
    for body in ({"digest": digest_of(BASE)}, {"digest": digest_of(BASE), "software": BASE}):
        response = await client.post("/api/agent/inventory", json=body, headers=stranger)
        assert response.status_code == 401
    async with app_state(app).database.session() as session:
        await device_service.revoke(
            session,
            device_id=device.device_id,
            now=clock.now,
            actor=CLI_ACTOR,
            lifecycle=app_state(app).part(DeviceLifecycle),
        )
        await session.commit()
    assert (await send(client, device, {"digest": digest_of(BASE)})).status_code == 401
    titles, _ = await assert_counts_fresh(app_state(app).database)
    assert titles == {}  # a revoked device leaves the counts
    # Enrolled again, it counts again, and its digest no longer stands for its list.
    again = await register_device(client, secret, device_id=device.device_id)
    titles, _ = await assert_counts_fresh(app_state(app).database)
    assert titles == {"Notepad++.Notepad++": 1, "7zip.7zip": 1, "Adobe AIR": 1}
    assert (await report_digest(client, again, BASE))["full_list_needed"] is True
    assert (await report_list(client, again, BASE))["unchanged"] == 3


async def test_concurrent_reports_keep_exact_counts(app, client):
    secret = await create_secret(app)
    devices = [await register_device(client, secret, hostname=f"PC-{n}") for n in range(6)]
    catalog = [(f"Vendor.App{n}", [f"{n}.{v}" for v in range(3)]) for n in range(12)]
    rng = random.Random(17)

    def random_list() -> list[dict[str, str]]:
        chosen = rng.sample(catalog, rng.randint(0, len(catalog)))
        return [
            installed(package, rng.choice(versions), source="winget")
            for package, versions in chosen
        ]

    for _round in range(5):
        await asyncio.gather(*(report_list(client, device, random_list()) for device in devices))
        await assert_counts_fresh(app_state(app).database)

"""The fleet counters the report diff keeps always equal a fresh aggregation of the rows
they count: after every kind of change, with reports racing each other, across revoking
and re-enrolling a device, and when migration 0003 backfills them."""

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import astuple
from datetime import UTC, datetime

import httpx
from alembic import command
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.app import create_app
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.core.security import token_hash
from lunaris_server.core.settings import Settings
from lunaris_server.db import Database
from lunaris_server.db.migrate import alembic_config, upgrade_to_head
from lunaris_server.devices import service as device_service
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.models import Device
from lunaris_server.updates import fleet_counts
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates.models import (
    DeviceUpdate,
    FleetPackage,
    FleetVariant,
    UpdateActivity,
    UpdateEvent,
)
from lunaris_server.updates.queries import FleetQuery
from tests.support import app_state, create_secret, register_device, update_row

Snapshot = tuple[dict[tuple[str, str], int], dict[tuple, int], dict[str, tuple[int, int]]]


async def fresh_aggregation(session: AsyncSession) -> Snapshot:
    """What the counters must say, aggregated from scratch the slow way."""
    source = func.coalesce(DeviceUpdate.source, "")
    listed = Device.revoked_at.is_(None)
    packages = await session.execute(
        select(DeviceUpdate.package_identifier, source, func.count(func.distinct(Device.id)))
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(listed)
        .group_by(DeviceUpdate.package_identifier, source)
    )
    shown = (
        DeviceUpdate.package_identifier,
        source,
        DeviceUpdate.installed_version,
        DeviceUpdate.available_version,
        DeviceUpdate.name,
        DeviceUpdate.explicit_targeting,
        DeviceUpdate.truncated,
    )
    variants = await session.execute(
        select(*shown, func.count())
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(listed)
        .group_by(*shown)
    )
    days: Counter[tuple[str, str]] = Counter()
    for at, kind in await session.execute(select(UpdateEvent.at, UpdateEvent.kind)):
        days[(at.astimezone(UTC).date().isoformat(), kind)] += 1
    activity = {
        day: (days[(day, "detected")], days[(day, "resolved")])
        for day in {day for day, kind in days if kind in ("detected", "resolved")}
    }
    return (
        {(p, s): n for p, s, n in packages},
        {(p, s, i, a, n, bool(e), bool(t)): c for p, s, i, a, n, e, t, c in variants},
        activity,
    )


async def counters(session: AsyncSession) -> Snapshot:
    packages = {
        (p.package_identifier, p.source): p.devices
        for p in await session.scalars(select(FleetPackage))
    }
    variants = {}
    for v in await session.scalars(select(FleetVariant)):
        shown = fleet_counts.Variant(
            v.package_identifier,
            v.source,
            v.installed_version,
            v.available_version,
            v.name,
            v.explicit_targeting,
            v.truncated,
        )
        assert v.key == shown.key
        variants[astuple(shown)] = v.rows
    activity: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    for row in await session.scalars(select(UpdateActivity)):
        detected[row.day.isoformat()] += row.detected
        activity[row.day.isoformat()] += row.resolved
    return (
        packages,
        variants,
        {day: (detected[day], activity[day]) for day in detected | activity},
    )


async def assert_counts_fresh(database: Database) -> Snapshot:
    async with database.session() as session:
        expected, actual = await fresh_aggregation(session), await counters(session)
    assert actual == expected
    return actual


async def report(client: httpx.AsyncClient, device, rows) -> None:
    response = await client.post(
        "/api/agent/update-report", json={"updates": rows}, headers=device.headers
    )
    assert response.status_code == 200, response.text


async def test_counts_follow_every_kind_of_change(app, client, clock):
    database = app_state(app).database
    secret = await create_secret(app)
    one = await register_device(client, secret, hostname="ONE")
    two = await register_device(client, secret, hostname="TWO")
    git = update_row("Git.Git", "2.31.0", "2.33.0")
    steps = [
        (one, [git, update_row("7zip.7zip", "19.00", "23.01")]),  # added
        (two, [git]),  # a second device waits for Git
        (one, [git, update_row("7zip.7zip", "19.00", "24.08")]),  # new available version
        (one, [git, update_row("7zip.7zip", "23.01", "24.08")]),  # partial upgrade
        (one, [git, git, update_row("7zip.7zip", "23.01", "24.08")]),  # exact duplicate
        # Two installs of one package: two rows, one device.
        (two, [git, update_row("Git.Git", "2.40.0", "2.47.0")]),
        (two, [{**git, "name": "Git for Windows"}, update_row("Git.Git", "2.40.0", "2.47.0")]),
        (two, [{**git, "explicit_targeting": True, "truncated": True}]),
        # No source, and "" (the console shows both as none).
        (one, [git, update_row("Local.Tool", "1", "2", source=None)]),
        (two, [update_row("Local.Tool", "1", "2", source="")]),
        (one, []),  # everything resolved
        (two, []),
    ]
    for device, rows in steps:
        clock.advance(hours=7)  # the history spreads over several days
        await report(client, device, rows)
        await assert_counts_fresh(database)
    packages, variants, activity = await assert_counts_fresh(database)
    assert (packages, variants) == ({}, {})  # nothing waiting leaves no counter rows
    assert sum(d for d, _ in activity.values()) == sum(r for _, r in activity.values()) > 0


async def test_counts_feed_the_fleet_table(app, client):
    secret = await create_secret(app)
    one = await register_device(client, secret, hostname="ONE")
    two = await register_device(client, secret, hostname="TWO")
    await report(client, one, [update_row("Git.Git", "2.9.0", "2.10.0", name="Git 2.9")])
    await report(
        client,
        two,
        [
            update_row("Git.Git", "2.9.0", "2.9.5", name="Git 2.9"),
            update_row("Git.Git", "2.30.0", "2.10.0", name="Git 2.30", explicit_targeting=True),
        ],
    )
    async with app_state(app).database.session() as session:
        (git,), total = await update_queries.fleet_updates(session, query=FleetQuery())
    assert total == 1
    assert (git.devices, git.name, git.available_version) == (2, "Git 2.9", "2.10.0")
    assert git.installed_versions == ["2.30.0", "2.9.0"]
    assert (git.source, git.explicit_targeting, git.truncated) == ("winget", True, False)


PACKAGES = [f"Vendor.App{n}" for n in range(6)]


def random_report(rng: random.Random) -> list[dict]:
    rows = []
    for package in rng.sample(PACKAGES, rng.randint(0, len(PACKAGES))):
        installed = rng.choice(["1.0", "1.1"])
        rows.append(update_row(package, installed, rng.choice(["2.0", "3.0"])))
        if rng.random() < 0.2:  # a second install, or an exact duplicate
            rows.append(update_row(package, rng.choice(["0.9", installed]), "2.0"))
    return rows


async def test_concurrent_reports_lose_no_counts(app, client):
    """Reports of many devices about the same packages at once: on PostgreSQL they run in
    parallel transactions (no lost update, no deadlock); SQLite serialises them."""
    database = app_state(app).database
    secret = await create_secret(app)
    devices = [await register_device(client, secret, hostname=f"PC-{n}") for n in range(12)]
    rng = random.Random(7)
    for _round in range(6):
        reports = [(device, random_report(rng)) for device in devices]
        await asyncio.gather(*(report(client, device, rows) for device, rows in reports))
        packages, _variants, _activity = await assert_counts_fresh(database)
    assert packages  # the last round left something waiting


async def test_revoked_devices_leave_the_counts_and_come_back_when_enrolled(app, client, clock):
    database = app_state(app).database
    secret = await create_secret(app)
    kept = await register_device(client, secret, hostname="KEPT")
    revoked = await register_device(client, secret, hostname="REVOKED")
    await report(client, kept, [update_row("Git.Git")])
    await report(client, revoked, [update_row("Git.Git"), update_row("7zip.7zip")])
    for _twice in range(2):  # revoking again changes nothing
        async with database.session() as session:
            await device_service.revoke(
                session,
                device_id=revoked.device_id,
                now=clock.now,
                actor=CLI_ACTOR,
                lifecycle=app_state(app).part(DeviceLifecycle),
            )
            await session.commit()
        packages, _, _ = await assert_counts_fresh(database)
        assert packages == {("Git.Git", "winget"): 1}
    refused = await client.post(
        "/api/agent/update-report", json={"updates": []}, headers=revoked.headers
    )
    assert refused.status_code == 401
    # Enrolling again (same device id) counts its waiting updates again.
    await register_device(client, secret, device_id=revoked.device_id, hostname="REVOKED")
    packages, _, _ = await assert_counts_fresh(database)
    assert packages == {("Git.Git", "winget"): 2, ("7zip.7zip", "winget"): 1}


async def test_migration_backfills_the_counts_of_existing_rows(empty_database_url, tmp_path):
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database_url), "0002")
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    devices = [str(uuid.uuid4()) for _ in range(3)]
    database = Database(empty_database_url)
    rows = [
        (devices[0], "Git.Git", "winget", "2.31.0", False),
        (devices[0], "Git.Git", "winget", "2.40.0", False),  # two installs
        (devices[1], "Git.Git", "winget", "2.31.0", True),
        (devices[1], "Local.Tool", None, "1.0", False),
        (devices[2], "7zip.7zip", "winget", "19.00", False),  # a revoked device
    ]
    async with database.session() as session:
        await session.execute(
            insert(Device),
            [
                {
                    "id": device_id,
                    "hostname": f"PC-{n}",
                    "token_hash": token_hash(f"lnd_token_{n}"),
                    "enrolled_at": now,
                    "last_seen_at": now,
                    "revoked_at": now if n == 2 else None,
                    "updates_count": 0,
                }
                for n, device_id in enumerate(devices)
            ],
        )
        await session.execute(
            insert(DeviceUpdate),
            [
                {
                    "device_id": device_id,
                    "package_identifier": package,
                    "name": package,
                    "installed_version": installed,
                    "available_version": "9.9",
                    "source": source,
                    "explicit_targeting": explicit,
                    "truncated": False,
                    "instances": 1,
                    "first_seen_at": now,
                }
                for device_id, package, source, installed, explicit in rows
            ],
        )
        await session.execute(
            insert(UpdateEvent),
            [
                {
                    "device_id": devices[0],
                    "package_identifier": "Git.Git",
                    "source": "winget",
                    "kind": kind,
                    "at": now.replace(day=day, hour=23, minute=30),
                }
                for kind, day in [("detected", 1), ("detected", 1), ("resolved", 2)]
            ],
        )
        await session.commit()
    try:
        await asyncio.to_thread(upgrade_to_head, empty_database_url)
        packages, variants, activity = await assert_counts_fresh(database)
        assert packages == {("Git.Git", "winget"): 2, ("Local.Tool", ""): 1}
        assert len(variants) == 4
        assert activity == {"2026-11-01": (2, 0), "2026-11-02": (0, 1)}
    finally:
        await database.dispose()

    # Reports after the migration adjust the backfilled rows (same keys) and not new ones.
    settings = Settings(
        database_url=empty_database_url, data_dir=tmp_path / "data", secret_key="test-secret-key"
    )
    application = create_app(settings)
    state = app_state(application)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            secret = await create_secret(application)
            for n, device_id in enumerate(devices[:2]):
                # Enrolled before: its agent proves the id is its own with its token.
                device = await register_device(
                    http, secret, device_id=device_id, device_token=f"lnd_token_{n}"
                )
                await report(http, device, [])
        packages, variants, _ = await assert_counts_fresh(state.database)
        assert (packages, variants) == ({}, {})
    finally:
        await state.database.dispose()

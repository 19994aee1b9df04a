"""Console pages scenario: page latency with a large fleet.

A fresh database gets ``devices`` enrolled devices with realistic waiting updates (a few
per device from a catalog of real winget packages) and a month of history, inserted in bulk
into the tables with the fleet counters the report diff would have kept (going through the
agent API would take most of an hour at this size). Then each console page is requested one
at a time (after three warm-up requests) and its answer time recorded.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bench._common import (
    BenchDatabase,
    Result,
    log,
    percentile,
    print_table,
    save_plot,
    start_server,
)
from bench._loadgen import closed_loop, get_request
from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.db.engine import Database
from lunaris_server.devices.models import Device
from lunaris_server.updates.fleet_counts import Variant, variant_of
from lunaris_server.updates.models import (
    DeviceUpdate,
    FleetPackage,
    FleetVariant,
    UpdateActivity,
    UpdateEvent,
)

CATALOG = [
    ("Mozilla.Firefox", "Mozilla Firefox (x64 en-US)", "131.0.3", "133.0"),
    ("Google.Chrome", "Google Chrome", "130.0.6723.117", "131.0.6778.86"),
    ("7zip.7zip", "7-Zip 23.01 (x64)", "23.01", "24.08"),
    ("Microsoft.VisualStudioCode", "Microsoft Visual Studio Code", "1.94.2", "1.95.3"),
    ("Notepad++.Notepad++", "Notepad++ (64-bit x64)", "8.6.9", "8.7.1"),
    ("VideoLAN.VLC", "VLC media player", "3.0.20", "3.0.21"),
    ("Zoom.Zoom", "Zoom Workplace", "6.2.5.52290", "6.2.11.54006"),
    ("Git.Git", "Git", "2.46.0", "2.47.0"),
    ("Python.Python.3.12", "Python 3.12.6 (64-bit)", "3.12.6", "3.12.7"),
    ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat (64-bit)", "24.003.20112", "24.004.20220"),
    (
        "Microsoft.DotNet.DesktopRuntime.8",
        "Microsoft Windows Desktop Runtime - 8.0.8",
        "8.0.8",
        "8.0.11",
    ),
    ("SlackTechnologies.Slack", "Slack", "4.40.126", "4.41.97"),
    ("Microsoft.Teams", "Microsoft Teams", "24215.1007.3082.1590", "24277.3507.3205.5228"),
    ("Discord.Discord", "Discord", "1.0.9163", "1.0.9171"),
    ("Microsoft.PowerShell", "PowerShell 7.4.5.0-x64", "7.4.5.0", "7.4.6.0"),
    ("Audacity.Audacity", "Audacity 3.6.4", "3.6.4", "3.7.0"),
    ("Bitwarden.Bitwarden", "Bitwarden", "2024.9.0", "2024.10.2"),
    ("Microsoft.AzureCLI", "Microsoft Azure CLI (64-bit)", "2.64.0", "2.66.0"),
    ("WinSCP.WinSCP", "WinSCP 6.3.4", "6.3.4", "6.3.5"),
    ("PuTTY.PuTTY", "PuTTY release 0.81 (64-bit)", "0.81.0.0", "0.82.0.0"),
]


async def seed_fleet(url: str, count: int, *, batch: int = 2000) -> None:
    """``count`` devices, 10% of them offline, each waiting for 0 to 12 updates, with a
    month of history (each wait detected on some day; a few updates since resolved)."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    # Devices enroll in no particular hostname order: the heap is not sorted by hostname.
    numbers = list(range(count))
    rng.shuffle(numbers)
    database = Database(url)
    counts = _FleetCounts()
    try:
        async with database.session() as session:
            for start in range(0, count, batch):
                devices: list[dict[str, Any]] = []
                rows: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for n in range(start, min(count, start + batch)):
                    device_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    offline = rng.random() < 0.1
                    seen_ago = (
                        timedelta(days=rng.uniform(0.5, 14))
                        if offline
                        else timedelta(seconds=rng.uniform(0, 60))
                    )
                    packages = rng.sample(CATALOG, rng.randint(0, 12))
                    devices.append(
                        {
                            "id": device_id,
                            "hostname": f"PC-{numbers[n]:06}",
                            "os_version": "Windows 11 Pro 23H2 (10.0.22631.4460)",
                            "agent_version": "0.1.0",
                            "token_hash": token_hash(new_token(TokenKind.DEVICE)),
                            "enrolled_at": now - timedelta(days=60),
                            "last_seen_at": now - seen_ago,
                            "announced_status": "offline" if offline else "online",
                            "updates_count": len(packages),
                        }
                    )
                    for package, name, installed, available in packages:
                        seen = now - timedelta(days=rng.uniform(0, 30))
                        rows.append(
                            {
                                "device_id": device_id,
                                "package_identifier": package,
                                "name": name,
                                "installed_version": installed,
                                "available_version": available,
                                "source": "winget",
                                "explicit_targeting": False,
                                "truncated": False,
                                "instances": 1,
                                "first_seen_at": seen,
                            }
                        )
                        events.append(_event(device_id, package, "detected", seen))
                    for package, _name, _installed, _available in rng.sample(
                        CATALOG, rng.randint(0, 3)
                    ):
                        resolved = now - timedelta(days=rng.uniform(0, 29))
                        detected = resolved - timedelta(days=rng.uniform(0, 10))
                        events.append(_event(device_id, package, "detected", detected))
                        events.append(_event(device_id, package, "resolved", resolved))
                await session.execute(insert(Device), devices)
                if rows:
                    await session.execute(insert(DeviceUpdate), rows)
                await session.execute(insert(UpdateEvent), events)
                counts.add(rows, events)
            await counts.insert(session)
            await session.commit()
        # Planner statistics and visibility map as autovacuum would leave them. Outside a
        # transaction: PostgreSQL keeps nothing of an ANALYZE that was rolled back.
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(
                "VACUUM ANALYZE" if database.engine.dialect.name == "postgresql" else "ANALYZE"
            )
    finally:
        await database.dispose()


class _FleetCounts:
    """The counters the report diff would have kept for the rows inserted in bulk."""

    def __init__(self) -> None:
        self.packages: Counter[tuple[str, str]] = Counter()
        self.variants: Counter[Variant] = Counter()
        self.days: Counter[tuple[date, str]] = Counter()

    def add(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        for row in rows:  # a device waits for a package at most once here
            variant = variant_of(DeviceUpdate(**row))
            self.packages[variant.package] += 1
            self.variants[variant] += 1
        for event in events:
            self.days[(event["at"].astimezone(UTC).date(), event["kind"])] += 1

    async def insert(self, session: AsyncSession) -> None:
        await session.execute(
            insert(FleetPackage),
            [
                {"package_identifier": p, "source": s, "devices": n}
                for (p, s), n in self.packages.items()
            ],
        )
        await session.execute(
            insert(FleetVariant),
            [{"key": v.key, **asdict(v), "rows": n} for v, n in self.variants.items()],
        )
        days = {day for day, _kind in self.days}
        await session.execute(
            insert(UpdateActivity),
            [
                {
                    "day": day,
                    "shard": 0,
                    "detected": self.days[(day, "detected")],
                    "resolved": self.days[(day, "resolved")],
                }
                for day in days
            ],
        )


VERSIONS = {package: (installed, available) for package, _name, installed, available in CATALOG}


def _event(device_id: str, package: str, kind: str, at: datetime) -> dict[str, Any]:
    installed, available = VERSIONS[package]
    return {
        "device_id": device_id,
        "package_identifier": package,
        "source": "winget",
        "kind": kind,
        "from_version": installed,
        "to_version": available,
        "at": at,
    }


PAGES = {
    "dashboard /": "/",
    "devices page 1": "/devices",
    "devices page 1,500 by number": "/devices?page=1500",
    # What the pager's "Next" link on page 1,499 points at (read from that page).
    "devices page 1,500 by Next": "next of /devices?page=1499",
    "devices search": "/devices?q=PC-0123",
    "devices filtered": "/devices?status=offline&sort=-updates_count",
    "updates": "/updates",
    "updates, one package": "/updates/devices?package=Mozilla.Firefox&source=winget",
    "groups (20)": "/groups",
    "groups' sizes (20, one pass)": "/groups/fragments/table",
    "devices with a tag": "/devices?tag=kiosk",
    "devices in a group: a tag": "/devices?group_id={Site berlin}",
    "devices in a group: all of 2 tags": "/devices?group_id={Berlin finance}",
    "devices in a group: glob": "/devices?group_id={Hostnames *7}",
    "devices in a group: list + tag": "/devices?group_id={Listed 50 or kiosks}",
    "one device's page (its groups)": "/devices/{a device}",
}
_NEXT_LINK = re.compile(r'rel="next" href="([^"]+)"')


def _resolve(base_url: str, headers: dict[str, str], path: str, names: dict[str, Any]) -> str:
    path = re.sub(r"{([^}]+)}", lambda m: str(names[m.group(1)]), path)
    if not path.startswith("next of "):
        return path
    page = httpx.get(base_url + path.removeprefix("next of "), headers=headers, timeout=30)
    found = _NEXT_LINK.search(page.text)
    if found is None:
        raise RuntimeError(f"no next link on {path}")
    return html.unescape(found.group(1))


def run(
    *,
    backend: str,
    devices: int,
    requests: int,
    plot: Path | None,
    seeded_url: str | None = None,
) -> Result:
    """``seeded_url``: measure a database ``seed_fleet`` filled before (of ``devices``
    devices), and keep it, instead of seeding a fresh one: before/after runs of a change
    then measure the same rows, and skip minutes of seeding."""
    database = (
        BenchDatabase(seeded_url) if seeded_url else asyncio.run(BenchDatabase.create(backend))
    )
    try:
        if seeded_url is None:
            started = time.monotonic()
            log(f"seeding {devices} devices with updates and history on {backend}")
            asyncio.run(seed_fleet(database.url, devices))
            log(f"seeded in {time.monotonic() - started:.0f}s")
        names: dict[str, Any] = asyncio.run(_groups(database.url))
        token = asyncio.run(_viewer_token(database.url))
        # Nothing heartbeats during the run: a window of hours keeps the online devices online
        # (with the default 3 minutes the sweeper would flip 90,000 devices offline mid-run).
        server = start_server(database.url, LUNARIS_HEARTBEAT_INTERVAL_S="3600")
        try:
            host, port = server.base_url.removeprefix("http://").split(":")
            headers = {"Authorization": f"Bearer {token}"}
            figures: dict[str, Any] = {"backend": backend, "devices": devices}
            table = []
            for name, page in PAGES.items():
                path = _resolve(server.base_url, headers, page, names)
                request = get_request(f"{host}:{port}", path, headers)
                asyncio.run(closed_loop(host, int(port), request=request, count=3))  # warm
                load = asyncio.run(closed_loop(host, int(port), request=request, count=requests))
                latencies = [ms for _index, ms in load.latencies]
                if set(load.statuses) != {200}:
                    raise RuntimeError(f"{path} answered {load.statuses}")
                p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
                figures[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
                table.append((name, f"{p50:.1f} / {p95:.1f}"))
        finally:
            server.stop()
    finally:
        asyncio.run(database.drop())
    print_table(f"console pages on {backend}, {devices} devices: p50 / p95 (ms)", table)
    result = Result("pages")
    result.figures = figures
    if plot is not None:
        _plot(plot, figures)
    return result


async def _groups(url: str) -> dict[str, Any]:
    """The groups by name (seeded once per database) and a device id, for the pages' paths."""
    from sqlalchemy import select

    from bench.fleet_groups import seed_groups
    from lunaris_server.devices.models import DeviceGroup

    database = Database(url)
    try:
        async with database.session() as session:
            names: dict[str, Any] = {
                name: group_id
                for group_id, name in await session.execute(
                    select(DeviceGroup.id, DeviceGroup.name)
                )
            }
            names["a device"] = await session.scalar(select(Device.id).limit(1))
    finally:
        await database.dispose()
    if len(names) == 1:
        log("seeding tags and twenty groups")
        names |= await seed_groups(url)
    return names


async def _viewer_token(url: str) -> str:
    """An API token of a new viewer (a fresh name each run: a kept database has the others)."""
    from lunaris_server.accounts import service as accounts
    from lunaris_server.audit.service import CLI_ACTOR

    database = Database(url)
    now = datetime.now(UTC)
    try:
        async with database.session() as session:
            user = await accounts.add_user(
                session,
                username=f"bench-{uuid.uuid4().hex[:8]}",
                password="bench-password",
                role="viewer",
                now=now,
                actor=CLI_ACTOR,
            )
            created = await accounts.add_api_token(
                session, user=user, name="bench", now=now, actor=CLI_ACTOR
            )
            await session.commit()
            return created.plaintext
    finally:
        await database.dispose()


def _plot(path: Path, figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(PAGES)
    figure, axis = plt.subplots(figsize=(8, 4))
    positions = range(len(names))
    axis.barh([p + 0.2 for p in positions], [figures[n]["p50_ms"] for n in names], 0.4, label="p50")
    axis.barh([p - 0.2 for p in positions], [figures[n]["p95_ms"] for n in names], 0.4, label="p95")
    axis.set_yticks(list(positions), names)
    axis.axvline(100, color="grey", linestyle="--", linewidth=1)
    axis.set_xlabel("latency (ms)")
    axis.set_title(f"console pages, {figures['devices']:,} devices, {figures['backend']}")
    axis.legend()
    save_plot(figure, path)

"""Console pages scenario: page latency with a large fleet.

A fresh database gets ``devices`` enrolled devices with realistic waiting updates (a few
per device from a catalog of real winget packages) and a month of history, inserted in bulk
into the tables (going through the agent API would take most of an hour at this size).
Then each console page is requested one at a time (after three warm-up requests) and its
answer time recorded.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from bench._common import BenchDatabase, Result, log, percentile, print_table, start_server
from bench._loadgen import closed_loop, get_request
from bench.realtime import _api_token
from lunaris_server.db.engine import Database
from lunaris_server.devices.models import Device
from lunaris_server.security import TokenKind, new_token, token_hash
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent

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
    """``count`` devices, 10% of them offline, each waiting for 0 to 12 updates."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    database = Database(url)
    try:
        async with database.session() as session:
            for start in range(0, count, batch):
                devices: list[dict[str, Any]] = []
                rows: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for n in range(start, min(count, start + batch)):
                    device_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    offline = rng.random() < 0.1
                    packages = rng.sample(CATALOG, rng.randint(0, 12))
                    devices.append(
                        {
                            "id": device_id,
                            "hostname": f"PC-{n:06}",
                            "os_version": "Windows 11 Pro 23H2 (10.0.22631.4460)",
                            "agent_version": "0.1.0",
                            "token_hash": token_hash(new_token(TokenKind.DEVICE)),
                            "enrolled_at": now - timedelta(days=60),
                            "last_seen_at": now - timedelta(hours=3 if offline else 0),
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
                        events.append(
                            {
                                "device_id": device_id,
                                "package_identifier": package,
                                "source": "winget",
                                "kind": "detected",
                                "from_version": installed,
                                "to_version": available,
                                "at": seen,
                            }
                        )
                await session.execute(insert(Device), devices)
                if rows:
                    await session.execute(insert(DeviceUpdate), rows)
                    await session.execute(insert(UpdateEvent), events)
            await session.commit()
            # Planner statistics as a running server would have them.
            await session.execute(update(Device).where(Device.id == "").values(hostname=""))
        async with database.engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
    finally:
        await database.dispose()


PAGES = {
    "dashboard /": "/",
    "devices page 1": "/devices",
    "devices deep page": "/devices?page=1500",
    "devices search": "/devices?q=PC-0123",
    "devices filtered": "/devices?status=offline&sort=-updates_count",
    "updates": "/updates",
}


def run(*, backend: str, devices: int, requests: int, plot: Path | None) -> Result:
    database = asyncio.run(BenchDatabase.create(backend))
    try:
        started = time.monotonic()
        log(f"seeding {devices} devices with updates and history on {backend}")
        asyncio.run(seed_fleet(database.url, devices))
        log(f"seeded in {time.monotonic() - started:.0f}s")
        token = asyncio.run(_api_token(database.url))
        server = start_server(database.url)
        try:
            host, port = server.base_url.removeprefix("http://").split(":")
            headers = {"Authorization": f"Bearer {token}"}
            figures: dict[str, Any] = {"backend": backend, "devices": devices}
            table = []
            for name, path in PAGES.items():
                request = get_request(f"{host}:{port}", path, headers)
                asyncio.run(closed_loop(host, int(port), request=request, count=3))  # warm
                result = asyncio.run(closed_loop(host, int(port), request=request, count=requests))
                latencies = [ms for _index, ms in result.latencies]
                if set(result.statuses) != {200}:
                    raise RuntimeError(f"{path} answered {result.statuses}")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

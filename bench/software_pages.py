"""Software pages scenario: the inventory's pages and API with a large fleet.

A fresh database gets ``devices`` devices with about 150 installed apps each (bench/
_software_seed.py: a few hundred common apps in a handful of versions each, most devices on
the newest, plus a few ARP entries only that device has), inserted in bulk with the
counters the inventory diff would have kept. Then each route is requested one at a time
(after three warm-up requests) and its answer time recorded, as in pages.py. Console pages
not in this version of the server (404) are left out and said so.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

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
from bench._software_seed import (
    Seeded,
    check_disk,
    data_directory,
    disk_use,
    seed_inventory,
    seeded_in,
)
from bench.pages import _viewer_token

NOTEPAD = "Notepad%2B%2B.Notepad%2B%2B"
API = {
    "API apps (all)": "/api/software",
    "API apps ?q=notepad": "/api/software?q=notepad",
    "API apps ?q=Notepad++ < 8.8": f"/api/software?q={NOTEPAD}%20%3C%208.8",
    "API an app's devices": f"/api/software/{NOTEPAD}/devices",
    "API an app's devices < 8.8": f"/api/software/{NOTEPAD}/devices?version_lt=8.8",
    "API one device's installed list": "/api/devices/{device}/software",
}
CONSOLE = {
    "/software": "/software",
    "/software?q=notepad": "/software?q=notepad",
    "/software?q=Notepad++ < 8.8": f"/software?q={NOTEPAD}%20%3C%208.8",
    "/software/{package}": f"/software/{NOTEPAD}",
    "/software/{package}?version_lt=8.8": f"/software/{NOTEPAD}?version_lt=8.8",
    "device page (installed list)": "/devices/{device}",
}


def run(
    *,
    backend: str,
    devices: int,
    requests: int,
    plot: Path | None,
    keep: bool = False,
    seeded_url: str | None = None,
) -> Result:
    """``keep``: leave the database (its URL is logged) for EXPLAIN or a later run;
    ``seeded_url``: measure such a database (of ``devices`` devices) instead of seeding."""
    database = (
        BenchDatabase(seeded_url) if seeded_url else asyncio.run(BenchDatabase.create(backend))
    )
    figures: dict[str, Any] = {"backend": backend, "devices": devices}
    table: list[tuple[str, str]] = []
    try:
        seeded = asyncio.run(_seed(database.url, backend, devices, figures, seeded_url))
        token = asyncio.run(_viewer_token(database.url))
        server = start_server(database.url, LUNARIS_HEARTBEAT_INTERVAL_S="3600")
        try:
            host, port = server.base_url.removeprefix("http://").split(":")
            headers = {"Authorization": f"Bearer {token}"}
            missing = []
            for name, page in (API | CONSOLE).items():
                path = page.replace("{device}", seeded.device_id)
                request = get_request(f"{host}:{port}", path, headers)
                warm = asyncio.run(closed_loop(host, int(port), request=request, count=3))
                if name in CONSOLE and set(warm.statuses) == {404}:
                    missing.append(name)
                    continue
                load = asyncio.run(closed_loop(host, int(port), request=request, count=requests))
                if set(load.statuses) != {200}:
                    raise RuntimeError(f"{path} answered {load.statuses}")
                latencies = [ms for _index, ms in load.latencies]
                p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
                p99 = percentile(latencies, 99)
                figures[name] = {
                    "p50_ms": round(p50, 1),
                    "p95_ms": round(p95, 1),
                    "p99_ms": round(p99, 1),
                }
                table.append((name, f"{p50:.1f} / {p95:.1f} / {p99:.1f}"))
            figures["console_pages_missing"] = missing
        finally:
            server.stop()
    finally:
        if keep or seeded_url:
            log(f"kept {database.url}")
        else:
            _drop(database, backend)
    table += _seed_rows(figures)
    print_table(f"software on {backend}, {devices} devices: p50 / p95 / p99 (ms)", table)
    if figures["console_pages_missing"]:
        log(f"not in this server (404): {', '.join(figures['console_pages_missing'])}")
    result = Result("software-pages")
    result.figures = figures
    if plot is not None:
        _plot(plot, figures)
    return result


async def _seed(
    url: str, backend: str, devices: int, figures: dict[str, Any], seeded_url: str | None
) -> Seeded:
    if seeded_url is not None:
        figures["disk_mb"] = round(await disk_use(url) / 1024**2)
        return await seeded_in(url)
    directory = None if backend == "sqlite" else await data_directory(url)
    check_disk(url, devices, 150, directory)
    log(f"seeding {devices} devices with about 150 apps each on {backend}")
    started = time.monotonic()
    seeded = await seed_inventory(url, devices)
    figures |= {
        "seed_s": round(time.monotonic() - started),
        "rows": seeded.rows,
        "titles": seeded.titles,
        "versions": seeded.versions,
        "disk_mb": round(await disk_use(url) / 1024**2),
    }
    log(
        f"seeded {seeded.rows:,} rows ({seeded.titles:,} apps, {seeded.versions:,} "
        f"versions) in {figures['seed_s']} s; {figures['disk_mb']:,} MB on disk"
    )
    return seeded


def _seed_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("database on disk (MB)", f"{figures['disk_mb']:,}")]
    if "seed_s" in figures:
        rows += [
            ("seed time (s)", f"{figures['seed_s']}"),
            (
                "rows / apps / versions",
                f"{figures['rows']:,} / {figures['titles']:,} / {figures['versions']:,}",
            ),
        ]
    return rows


def _drop(database: BenchDatabase, backend: str) -> None:
    asyncio.run(database.drop())
    if backend == "sqlite":  # BenchDatabase leaves SQLite's file: this one is gigabytes
        file = Path(make_url(database.url).database or "")
        for leftover in file.parent.glob(file.name + "*"):
            leftover.unlink()


def _plot(path: Path, figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in (API | CONSOLE) if name in figures]
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5))
    positions = range(len(names))
    axis.barh([p + 0.2 for p in positions], [figures[n]["p50_ms"] for n in names], 0.4, label="p50")
    axis.barh([p - 0.2 for p in positions], [figures[n]["p95_ms"] for n in names], 0.4, label="p95")
    axis.set_yticks(list(positions), names)
    axis.invert_yaxis()
    axis.axvline(100, color="grey", linestyle="--", linewidth=1)
    axis.set_xlabel("latency (ms)")
    axis.set_title(f"software, {figures['devices']:,} devices x ~150 apps, {figures['backend']}")
    axis.legend()
    save_plot(figure, path)

"""Memory scenario: the server's resident memory as the fleet grows.

For each fleet size, a fresh database gets that many enrolled devices and one server process
starts on it. Its RSS is read after start-up and again after every device has heartbeated
once (each process keeps a small entry per device it has seen, so plain heartbeats need no
query). The difference per device is what a larger fleet costs each server process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench._common import (
    BenchDatabase,
    Result,
    log,
    print_table,
    save_plot,
    seed_devices,
    start_server,
)
from bench._ramp import Generators
from bench.throughput import Heartbeats

HEARTBEAT_RATE = 2000.0


def run(*, backend: str, fleets: list[int], plot: Path | None) -> Result:
    rows: list[dict[str, float]] = []
    for devices in fleets:
        database = asyncio.run(BenchDatabase.create(backend))
        try:
            log(f"seeding {devices} devices on {backend}")
            tokens = [d.token for d in asyncio.run(seed_devices(database.url, devices))]
            server = start_server(database.url)
            try:
                started_mb = server.rss_kb() / 1024
                address = server.base_url.removeprefix("http://")
                host, port = address.split(":")
                pool = Generators(host, int(port), processes=1)
                try:
                    log(f"every device heartbeats once ({devices / HEARTBEAT_RATE:.0f} s)")
                    step = pool.offer(
                        Heartbeats(address, tokens), HEARTBEAT_RATE, devices / HEARTBEAT_RATE
                    )
                finally:
                    pool.close()
                if step.errors:
                    raise RuntimeError(f"{step.errors} heartbeats failed")
                seen_mb = server.rss_kb() / 1024
            finally:
                server.stop()
        finally:
            asyncio.run(database.drop())
        rows.append(
            {
                "devices": devices,
                "rss_mb_started": round(started_mb, 1),
                "rss_mb_all_seen": round(seen_mb, 1),
                "kb_per_device": round((seen_mb - started_mb) * 1024 / devices, 2),
            }
        )

    result = Result("memory")
    result.figures = {"backend": backend, "fleets": rows}
    print_table(
        f"server memory on {backend}, one process",
        [
            (
                f"{row['devices']:,} devices: RSS started / all seen",
                f"{row['rss_mb_started']:.0f} / {row['rss_mb_all_seen']:.0f} MB",
            )
            for row in rows
        ]
        + [
            (f"{row['devices']:,} devices: per device", f"{row['kb_per_device']} kB")
            for row in rows
        ],
    )
    if plot is not None:
        _plot(plot, rows, backend)
    return result


def _plot(path: Path, rows: list[dict[str, float]], backend: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    fleets = [row["devices"] for row in rows]
    axis.plot(fleets, [row["rss_mb_started"] for row in rows], marker="o", label="after start")
    axis.plot(
        fleets, [row["rss_mb_all_seen"] for row in rows], marker="o", label="every device seen"
    )
    axis.set_xscale("log")
    axis.set_xlabel("devices")
    axis.set_ylabel("server RSS (MB)")
    axis.set_ylim(bottom=0)
    axis.set_title(f"one server process, {backend}")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    save_plot(figure, path)

"""Realtime scenario: N agents heartbeat (open loop, compressed time) while consoles listen.

A fraction of the heartbeats carry a change (a new agent version), which the server must
announce on every console socket. Measured: heartbeat latency (from the moment it was due,
so a server that falls behind cannot hide it) and heartbeat-to-console event latency.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench._common import (
    BenchDatabase,
    Result,
    log,
    percentile,
    print_table,
    save_plot,
    seed_devices,
    start_server,
)
from bench._loadgen import open_loop, post_request


@dataclass(frozen=True)
class Load:
    base_url: str
    tokens: list[str]
    rate: float
    duration_s: float
    change_every: int
    wall_start: float
    warmup_s: float
    """Not measured: every agent heartbeats once first, as in a fleet that is running."""

    @property
    def measured_from(self) -> int:
        return int(self.rate * self.warmup_s)


async def _heartbeats(load: Load) -> dict[str, Any]:
    host, port = load.base_url.removeprefix("http://").split(":")
    plain = [
        post_request(
            f"{host}:{port}", "/api/agent/heartbeat", b"{}", {"Authorization": f"Bearer {t}"}
        )
        for t in load.tokens
    ]
    tagged: dict[str, float] = {}

    def request_for(index: int) -> bytes:
        token = load.tokens[index % len(load.tokens)]
        if index < load.measured_from or index % load.change_every:
            return plain[index % len(plain)]
        version = f"bench-{index}"
        tagged[version] = load.wall_start + index / load.rate
        body = json.dumps({"agent_version": version}).encode()
        return post_request(
            f"{host}:{port}", "/api/agent/heartbeat", body, {"Authorization": f"Bearer {token}"}
        )

    result = await open_loop(
        host,
        int(port),
        rate=load.rate,
        duration_s=load.warmup_s + load.duration_s,
        request_for=request_for,
        start_at=load.wall_start,
    )
    errors = result.errors + sum(n for status, n in result.statuses.items() if status != 200)
    return {
        "latencies_ms": [ms for index, ms in result.latencies if index >= load.measured_from],
        "errors": errors,
        "tagged": tagged,
        "sent": result.sent,
    }


def run_heartbeats(load: Load) -> dict[str, Any]:
    return asyncio.run(_heartbeats(load))


async def _consoles(base_url: str, token: str, count: int, until_wall: float) -> dict[str, Any]:
    arrivals: list[tuple[str, float]] = []
    url = base_url.replace("http://", "ws://") + "/ws/console"
    headers = {"Authorization": f"Bearer {token}"}

    async def listen() -> None:
        async with connect(url, additional_headers=headers, max_queue=None) as ws:
            while (remaining := until_wall - time.time()) > 0:
                try:
                    text = await asyncio.wait_for(ws.recv(), remaining)
                except TimeoutError:
                    return
                received = time.time()
                event = json.loads(text)
                version = event.get("data", {}).get("agent_version", "")
                if event["type"] == "DEVICE_STATUS_UPDATE" and version.startswith("bench-"):
                    arrivals.append((version, received))

    await asyncio.gather(*(listen() for _ in range(count)))
    return {"arrivals": arrivals}


def run_consoles(base_url: str, token: str, count: int, until_wall: float) -> dict[str, Any]:
    return asyncio.run(_consoles(base_url, token, count, until_wall))


async def _api_token(database_url: str) -> str:
    from lunaris_server.accounts import service as accounts
    from lunaris_server.audit.service import CLI_ACTOR
    from lunaris_server.core.clock import utc_now
    from lunaris_server.db.engine import Database

    database = Database(database_url)
    try:
        async with database.session() as session:
            user = await accounts.add_user(
                session,
                username="bench",
                password="bench-password",
                role="viewer",
                now=utc_now(),
                actor=CLI_ACTOR,
            )
            created = await accounts.add_api_token(
                session, user=user, name="bench", now=utc_now(), actor=CLI_ACTOR
            )
            await session.commit()
            return created.plaintext
    finally:
        await database.dispose()


def run(
    *,
    backend: str,
    agents: int,
    interval_s: float,
    consoles: int,
    duration_s: float,
    change_ratio: float,
    workers: int,
    server_env: dict[str, str],
    plot: Path | None,
) -> Result:
    database = asyncio.run(BenchDatabase.create(backend))
    try:
        log(f"seeding {agents} devices on {backend}")
        devices = asyncio.run(seed_devices(database.url, agents))
        token = asyncio.run(_api_token(database.url))
        server = start_server(database.url, workers=workers, **server_env)
        try:
            rate = agents / interval_s
            wall_start = time.time() + 3.0
            load = Load(
                server.base_url,
                [d.token for d in devices],
                rate,
                duration_s,
                max(1, round(1 / change_ratio)),
                wall_start,
                warmup_s=interval_s,
            )
            log(
                f"{rate:.0f} heartbeats/s: {interval_s:g}s warm-up, then {duration_s:.0f}s "
                f"measured; {consoles} consoles listening"
            )
            # Spawned, not forked: the parent has threads (asyncio's executor) by now.
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
                listening = pool.submit(
                    run_consoles,
                    server.base_url,
                    token,
                    consoles,
                    wall_start + interval_s + duration_s + 5,
                )
                beating = pool.submit(run_heartbeats, load)
                heartbeats, console_result = beating.result(), listening.result()
            rss_mb = server.rss_kb() / 1024
        finally:
            server.stop()
    finally:
        asyncio.run(database.drop())

    tagged: dict[str, float] = heartbeats["tagged"]
    event_latencies = [
        (received - tagged[tag]) * 1000
        for tag, received in console_result["arrivals"]
        if tag in tagged
    ]
    expected_deliveries = len(tagged) * consoles
    heartbeat_ms = heartbeats["latencies_ms"]
    result = Result("realtime")
    result.figures = {
        "backend": backend,
        "agents": agents,
        "interval_s": interval_s,
        "consoles": consoles,
        "workers": workers,
        "duration_s": duration_s,
        "heartbeat_rate": round(agents / interval_s, 1),
        "heartbeats_sent": heartbeats["sent"],
        "heartbeats_measured": len(heartbeat_ms),
        "heartbeat_errors": heartbeats["errors"],
        "heartbeat_p50_ms": round(percentile(heartbeat_ms, 50), 2),
        "heartbeat_p99_ms": round(percentile(heartbeat_ms, 99), 2),
        "events_expected": expected_deliveries,
        "events_delivered": len(event_latencies),
        "event_p50_ms": round(percentile(event_latencies, 50), 2),
        "event_p99_ms": round(percentile(event_latencies, 99), 2),
        "server_rss_mb": round(rss_mb, 1),
        "server_env": server_env,
    }
    print_table(
        f"realtime on {backend}, {workers} server process(es): {agents} agents every "
        f"{interval_s:g}s, {consoles} consoles",
        [
            ("heartbeats/s offered", f"{agents / interval_s:.0f}"),
            ("heartbeats sent / errors", f"{heartbeats['sent']} / {heartbeats['errors']}"),
            ("heartbeats measured (after warm-up)", f"{len(heartbeat_ms)}"),
            (
                "heartbeat p50 / p99 (ms)",
                f"{percentile(heartbeat_ms, 50):.1f} / {percentile(heartbeat_ms, 99):.1f}",
            ),
            ("events delivered / expected", f"{len(event_latencies)} / {expected_deliveries}"),
            (
                "event p50 / p99 (ms)",
                f"{percentile(event_latencies, 50):.1f} / {percentile(event_latencies, 99):.1f}",
            ),
            ("server RSS (MB)", f"{rss_mb:.0f}"),
        ],
    )
    if plot is not None:
        _plot(plot, heartbeat_ms, event_latencies, result.figures)
    return result


def _plot(
    path: Path, heartbeat_ms: list[float], event_ms: list[float], figures: dict[str, Any]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for label, values in (("heartbeat", heartbeat_ms), ("heartbeat → console event", event_ms)):
        if values:
            ordered = sorted(values)
            axis.plot(ordered, [i / len(ordered) * 100 for i in range(len(ordered))], label=label)
    axis.set_xscale("log")
    axis.set_xlabel("latency (ms, log scale)")
    axis.set_ylabel("percentile")
    axis.set_title(
        f"{figures['agents']} agents / {figures['interval_s']:g}s, "
        f"{figures['consoles']} consoles, {figures['backend']}, {figures['workers']} process(es)"
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    save_plot(figure, path)

"""Request cost scenario: server CPU time per request, one request at a time.

A real server process on a fresh database with 100 enrolled devices. Each kind of request is
sent a few thousand times, one after another, and the server's CPU time (user + system, from
/proc) is divided by the count. Latency under load depends on everything else on the machine;
CPU per request is what decides how many agents one process can hold, so it is the figure to
compare when changing the hot path.

Agents heartbeat every 60 s and the server closes idle connections after 5 s, so a real
heartbeat opens a new connection: that case is measured too.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bench._common import BenchDatabase, Result, log, print_table, seed_devices, start_server
from bench._loadgen import closed_loop, get_request, post_request

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEVICES = 100


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def _measure(
    pid: int, host: str, port: int, requests: list[bytes], *, per_connection: int, total: int
) -> tuple[float, float]:
    """(server CPU ms, wall ms) per request."""
    for request in requests:  # warm-up: caches filled, code paths imported
        await closed_loop(host, port, request=request, count=2)
    sent = 0
    cpu_before, started = _cpu_s(pid), time.perf_counter()
    while sent < total:
        for request in requests:
            result = await closed_loop(host, port, request=request, count=per_connection)
            sent += result.sent
            if result.statuses.keys() != {200}:
                raise RuntimeError(f"unexpected answers: {result.statuses}")
    cpu_ms = (_cpu_s(pid) - cpu_before) * 1000 / sent
    return cpu_ms, (time.perf_counter() - started) * 1000 / sent


def run(*, backend: str, total: int) -> Result:
    async def scenario() -> dict[str, tuple[float, float]]:
        database = await BenchDatabase.create(backend)
        try:
            devices = await seed_devices(database.url, DEVICES)
            server = start_server(database.url)
            try:
                host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
                address = f"{host}:{port}"
                healthz = [get_request(address, "/healthz")]
                heartbeats = [
                    post_request(
                        address,
                        "/api/agent/heartbeat",
                        b"{}",
                        {"Authorization": f"Bearer {device.token}"},
                    )
                    for device in devices
                ]
                pid = server.process.pid
                figures = {}
                log("GET /healthz, kept-alive connection")
                figures["healthz"] = await _measure(
                    pid, host, port, healthz, per_connection=100, total=total
                )
                log("heartbeats, kept-alive connections")
                figures["heartbeat"] = await _measure(
                    pid, host, port, heartbeats, per_connection=20, total=total
                )
                log("heartbeats, a new connection each (as agents at a 60 s interval)")
                figures["heartbeat_new_connection"] = await _measure(
                    pid, host, port, heartbeats, per_connection=1, total=total
                )
                return figures
            finally:
                server.stop()
        finally:
            await database.drop()

    figures = asyncio.run(scenario())
    result = Result("request-cost")
    result.figures = {"backend": backend, "requests_each": total} | {
        f"{name}_cpu_ms": round(cpu_ms, 3) for name, (cpu_ms, _) in figures.items()
    }
    print_table(
        f"server CPU per request on {backend} (one at a time, {total} of each)",
        [
            (name.replace("_", " "), f"{cpu_ms:.2f} ms CPU, {wall_ms:.2f} ms wall")
            for name, (cpu_ms, wall_ms) in figures.items()
        ],
    )
    return result

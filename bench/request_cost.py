"""Request cost scenario: server CPU time per request, one request at a time.

A real server process on a fresh database with 100 enrolled devices. Each kind of request is
sent a few thousand times, one after another, and the server's CPU time (user + system, from
/proc) is divided by the count. Latency under load depends on everything else on the machine;
CPU per request is what decides how many agents one process can hold, so it is the figure to
compare when changing the hot path.

Agents heartbeat every 60 s and the server closes idle connections after 5 s, so a real
heartbeat opens a new connection: that case is measured too.

Last, an admin queues a command for some of the devices (through the API, as the console
does): the heartbeats of those devices hand it over (again, until the agent reports a step),
and the other devices' heartbeats no longer find the set of devices with commands waiting
empty. Both are measured.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench._common import (
    BenchDatabase,
    Result,
    SeededDevice,
    log,
    print_table,
    seed_devices,
    start_server,
)
from bench._loadgen import closed_loop, get_request, post_request
from lunaris_server.accounts import service as accounts
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.db.engine import Database

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEVICES = 100
WITH_COMMAND = 20
"""Devices an admin queues a command for, before the last two measures."""


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


async def _admin_token(url: str) -> str:
    """An admin's API token, made in the database before the server starts."""
    database = Database(url)
    try:
        async with database.session() as session:
            now = datetime.now(UTC)
            user = await accounts.add_user(
                session,
                username="bench",
                password="bench password",
                role="admin",
                now=now,
                actor=CLI_ACTOR,
            )
            created = await accounts.add_api_token(
                session, user=user, name="bench", now=now, actor=CLI_ACTOR
            )
            await session.commit()
    finally:
        await database.dispose()
    return created.plaintext


async def _queue_commands(base_url: str, admin_token: str, devices: list[SeededDevice]) -> None:
    """A RUN_UPDATES of every update for each device, as an admin creates it; then checks
    that a heartbeat hands it over (else the measure would be of something else)."""
    body = {"kind": "RUN_UPDATES", "packages": None}
    async with httpx.AsyncClient(base_url=base_url) as client:
        for device in devices:
            response = await client.post(
                f"/api/devices/{device.device_id}/commands",
                json=body,
                headers={"Authorization": f"Bearer {admin_token}"},
            )
            response.raise_for_status()
        answer = await client.post(
            "/api/agent/heartbeat",
            json={},
            headers={"Authorization": f"Bearer {devices[0].token}"},
        )
        answer.raise_for_status()
        if len(answer.json()["commands"]) != 1:
            raise RuntimeError(f"the heartbeat did not hand the command over: {answer.text}")


def run(*, backend: str, total: int) -> Result:
    async def scenario() -> dict[str, tuple[float, float]]:
        database = await BenchDatabase.create(backend)
        try:
            devices = await seed_devices(database.url, DEVICES)
            admin_token = await _admin_token(database.url)
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
                waiting, others = heartbeats[:WITH_COMMAND], heartbeats[WITH_COMMAND:]
                await _queue_commands(server.base_url, admin_token, devices[:WITH_COMMAND])
                log("heartbeats of devices with a command waiting, kept-alive connections")
                figures["heartbeat_command_waiting"] = await _measure(
                    pid, host, port, waiting, per_connection=20, total=total
                )
                log("heartbeats of the other devices meanwhile, kept-alive connections")
                figures["heartbeat_others_waiting"] = await _measure(
                    pid, host, port, others, per_connection=20, total=total
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

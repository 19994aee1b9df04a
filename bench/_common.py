"""Shared pieces of the benchmarks: a real server process on a fresh database, fleets
seeded in bulk, latency statistics, and result files."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert, make_url

from lunaris_server.core.security import TokenKind, new_token, token_hash
from lunaris_server.db.engine import Database, asyncpg_dsn
from lunaris_server.db.migrate import upgrade_to_head
from lunaris_server.devices.models import Device

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BenchDatabase:
    """A fresh, migrated database that is dropped (or deleted) afterwards."""

    url: str
    admin_url: str | None = None

    @classmethod
    async def create(cls, backend: str) -> BenchDatabase:
        if backend == "sqlite":
            path = Path(tempfile.mkdtemp(prefix="lunaris-bench-")) / "bench.db"
            url = f"sqlite+aiosqlite:///{path}"
            database = cls(url)
        else:
            admin = os.environ.get("LUNARIS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
            name = f"lunaris_bench_{uuid.uuid4().hex[:10]}"
            connection = await asyncpg.connect(asyncpg_dsn(admin))
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()
            url = make_url(admin).set(database=name).render_as_string(hide_password=False)
            database = cls(url, admin)
        await asyncio.to_thread(upgrade_to_head, database.url)
        return database

    async def drop(self) -> None:
        if self.admin_url is None:
            return
        connection = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            name = make_url(self.url).database
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@dataclass(frozen=True)
class SeededDevice:
    device_id: str
    token: str


async def seed_devices(url: str, count: int, *, batch: int = 2000) -> list[SeededDevice]:
    """Inserts ``count`` enrolled devices in bulk; returns their ids and tokens."""
    now = datetime.now(UTC)
    devices = [SeededDevice(str(uuid.uuid4()), new_token(TokenKind.DEVICE)) for _ in range(count)]
    database = Database(url)
    try:
        async with database.session() as session:
            for start in range(0, count, batch):
                rows = [
                    {
                        "id": d.device_id,
                        "hostname": f"BENCH-{n:06}",
                        "os_version": "Windows 11 Pro 23H2 (10.0.22631.4460)",
                        "agent_version": "0.1.0",
                        "token_hash": token_hash(d.token),
                        "enrolled_at": now,
                        "last_seen_at": now,
                        "announced_status": "online",
                        "updates_count": 0,
                    }
                    for n, d in enumerate(devices[start : start + batch], start)
                ]
                await session.execute(insert(Device), rows)
            await session.commit()
    finally:
        await database.dispose()
    return devices


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def rss_kb(self) -> int:
        """Resident memory of the server, its worker processes included."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(pid) for pid in children.read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total


def start_server(database_url: str, *, workers: int = 1, **env: str) -> ServerProcess:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="lunaris-bench-server-"))
    log_path = data_dir / "server.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
    environment.update(
        LUNARIS_DATABASE_URL=database_url,
        LUNARIS_DATA_DIR=str(data_dir),
        LUNARIS_SECRET_KEY="bench",
        LUNARIS_LOG_FORMAT="json",
        LUNARIS_LOG_LEVEL="WARNING",
        **env,
    )
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "lunaris-server"), "serve", "--port", str(port), "--workers", str(workers)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("server did not become ready")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Result:
    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.machine = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print("-" * (width + 20))
    for name, value in rows:
        print(f"{name:<{width}}  {value:>16}")


def save_plot(figure: Any, path: Path) -> None:
    """Writes a matplotlib figure as a PNG and frees it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

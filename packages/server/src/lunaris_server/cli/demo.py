"""``lunaris-server demo``: the quick start.

Serves on the embedded database with a demo admin, and fills the fleet the way production
does: simulated agents (the agent package's simulator, run as separate processes) register
with an enrollment secret and report realistic winget results through the real agent API.

The terminal shows a banner and a summary line now and then (and any warning); the full log,
the server's and the simulators', goes to ``data_dir/demo.log``, rewritten at each start.
"""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.accounts import service as accounts
from lunaris_server.accounts.models import Role, User
from lunaris_server.agent_api.heartbeat import HEARTBEAT_PATH
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.cli.serving import uvicorn_config
from lunaris_server.core.clock import utc_now
from lunaris_server.core.private_files import OWNER_ONLY_FILE, create_private, private_dir
from lunaris_server.core.settings import Settings
from lunaris_server.dashboard.figures import fleet_figures
from lunaris_server.db import Database
from lunaris_server.enrollment import service as enrollment
from lunaris_server.web.metrics import REQUEST_SECONDS
from lunaris_server.web.state import AppState

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "lunaris-demo"  # noqa: S105 - printed to the user; the demo binds to loopback
RETIRED_DEVICES = 3
"""Devices that report once and fall silent, so the demo shows offline ones too."""
SIMULATED_SCAN_INTERVAL_S = 90
"""Faster than real agents, so the demo's update history moves while someone watches."""
LOG_FILE_NAME = "demo.log"
REPORT_PATH = "/api/agent/update-report"

log = logging.getLogger(__name__)


def open_log(data_dir: Path) -> TextIO:
    """The demo's log file, emptied, owner-only; opened to append, so the simulators, which
    write to it too, and the server never write over each other's lines."""
    private_dir(data_dir)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    descriptor = os.open(data_dir / LOG_FILE_NAME, flags, OWNER_ONLY_FILE)
    return os.fdopen(descriptor, "a", encoding="utf-8", buffering=1)


async def _prepare(database: Database, *, known_secret: str | None) -> str:
    """Ensures the demo admin and an enrollment secret; returns the secret's plaintext."""
    async with database.session() as session:
        if await session.scalar(select(User).where(User.username == DEMO_USERNAME)) is None:
            await accounts.add_user(
                session,
                username=DEMO_USERNAME,
                password=DEMO_PASSWORD,
                role=Role.ADMIN,
                now=utc_now(),
                actor=CLI_ACTOR,
            )
        secret = known_secret
        if secret is None:
            created = await enrollment.create_secret(
                session, name="demo", now=utc_now(), actor=CLI_ACTOR
            )
            secret = created.plaintext
        await session.commit()
        return secret


def _demo_secret(database: Database, secret_file: Path) -> str:
    # Only a hash is stored, so the demo keeps its own copy of the plaintext to reuse.
    known = secret_file.read_text(encoding="ascii").strip() if secret_file.exists() else None

    async def prepare() -> str:
        try:
            return await _prepare(database, known_secret=known)
        finally:
            await database.dispose()  # in the loop its connections belong to

    secret = asyncio.run(prepare())
    if secret != known:
        secret_file.unlink(missing_ok=True)
        private_dir(secret_file.parent)
        create_private(secret_file, secret)
    return secret


def _simulator(api_url: str, state_dir: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lunaris_agent",
        "simulate",
        "--api-url",
        api_url,
        "--state-dir",
        str(state_dir),
        *options,
    ]


def _start_simulators(
    api_url: str, secret: str, data_dir: Path, device_count: int, log_file: TextIO
) -> list[subprocess.Popen[bytes]]:
    retired = min(RETIRED_DEVICES, device_count)
    live = device_count - retired
    commands = []
    if retired:
        commands.append(
            _simulator(api_url, data_dir / "demo-agents-retired", "--count", str(retired), "--once")
        )
    if live:
        commands.append(
            _simulator(
                api_url,
                data_dir / "demo-agents",
                "--count",
                str(live),
                "--scan-interval",
                str(SIMULATED_SCAN_INTERVAL_S),
            )
        )
    # The secret goes through the environment: command lines are readable by every user.
    env = {**os.environ, "LUNARIS_ENROLLMENT_SECRET": secret}
    return [
        subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        for command in commands
    ]


def _banner(base_url: str, device_count: int, log_path: Path, summary_every_s: float) -> str:
    return "\n".join(
        [
            "",
            "  Lunaris demo is running",
            f"  Console:  {base_url}/",
            f"  Login:    {DEMO_USERNAME} / {DEMO_PASSWORD}",
            f"  API:      {base_url}/api  (explorer: {base_url}/api/docs)",
            f"  Devices:  {device_count} simulated agents reporting through the agent API",
            f"  Log:      {log_path}  (here: a summary every {summary_every_s:g} s)",
            "  Stop with Ctrl+C.",
            "",
        ]
    )


def _agent_requests() -> Counter[str]:
    """Requests answered with success since the process started, by route template: the
    request metrics' counts, heartbeats answered by the fast path included."""
    counts: Counter[str] = Counter()
    for metric in REQUEST_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["status"] == "2xx":
                counts[sample.labels["route"]] += int(sample.value)
    return counts


async def _print_summaries(state: AppState, every_s: float) -> None:
    """One line every ``every_s`` seconds: devices online, heartbeats a minute, reports,
    commands by status."""
    before, since = _agent_requests(), time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        try:
            figures = await fleet_figures(state)
        except Exception:
            log.warning("demo summary: could not read the fleet figures", exc_info=True)
            continue
        now, at = _agent_requests(), time.monotonic()
        per_minute = (now[HEARTBEAT_PATH] - before[HEARTBEAT_PATH]) * 60 / (at - since)
        before, since = now, at
        commands = ", ".join(f"{n} {status}" for status, n in figures.commands.items() if n)
        click.echo(
            f"{time.strftime('%H:%M:%S')}  devices: {figures.devices['online']} online, "
            f"{figures.devices['offline']} offline · {per_minute:.0f} heartbeats/min · "
            f"{now[REPORT_PATH]} reports since start · commands: {commands or 'none yet'}"
        )


class _DemoServer(uvicorn.Server):
    """Stops on SIGINT/SIGTERM without re-raising the signal afterwards (uvicorn's default),
    which would end the process before the demo has stopped its simulators."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def run_demo(
    settings: Settings,
    *,
    host: str,
    port: int,
    device_count: int,
    log_file: TextIO,
    summary_every_s: float,
) -> None:
    database = Database(settings.resolved_database_url)
    secret = _demo_secret(database, settings.data_dir / "demo-enrollment-secret")
    server = _DemoServer(uvicorn_config(settings, host=host, port=port))

    async def serve() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving  # failed to start (port taken, ...): let its error surface
                return
            await asyncio.sleep(0.05)
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        base_url = f"http://{_display_host(host)}:{bound_port}"
        simulators = _start_simulators(
            f"http://127.0.0.1:{bound_port}/api", secret, settings.data_dir, device_count, log_file
        )
        log_path = (settings.data_dir / LOG_FILE_NAME).resolve()
        click.echo(_banner(base_url, device_count, log_path, summary_every_s))
        app = server.config.app
        assert isinstance(app, FastAPI)
        summaries = asyncio.create_task(_print_summaries(app.state.lunaris, summary_every_s))
        try:
            await serving
        finally:
            summaries.cancel()
            for process in simulators:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            for process in simulators:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)

    asyncio.run(serve())


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104

"""``GET /metrics``: Prometheus text format.

- HTTP requests by method, route template and status class: one histogram, whose ``_count``
  is the request count. The middleware sits outermost, so heartbeats the fast path answers
  are counted too (one ``observe`` each).
- What this process holds: console and agent sockets, events queued for consoles, console
  resyncs and drops, the event bus backlog.
- Fleet figures from the database: devices by status, commands by status. Two aggregate
  queries, cached for ``FIGURES_TTL_S`` so scrapes never add up to load.

Several worker processes (``serve --workers N``) share one port, so a scrape reaches any one
of them: ``serving.serve`` then switches prometheus_client to its multiprocess mode (a
directory of memory-mapped files, ``PROMETHEUS_MULTIPROC_DIR``), request figures are summed
over all workers, and every worker writes its socket and queue figures there every
``REFRESH_S`` seconds.

Who may read: with ``LUNARIS_METRICS_TOKEN`` set, callers with that bearer token; without
it, loopback clients in dev only (404 to everyone else).
"""

import asyncio
import contextlib
import hmac
import ipaddress
import os
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lunaris_server.core.settings import Environment, Settings
from lunaris_server.core.tasks import run_every
from lunaris_server.web.state import AppState

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FIGURES_TTL_S = 10.0
REFRESH_S = 5.0
UNMATCHED_ROUTE = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")

REQUEST_SECONDS = Histogram(
    "lunaris_http_request_duration_seconds",
    "HTTP requests by route template and status class, and how long they took.",
    ["method", "route", "status"],
)
CONSOLE_SOCKETS = Gauge(
    "lunaris_console_sockets", "Open console WebSockets.", multiprocess_mode="livesum"
)
AGENT_SOCKETS = Gauge(
    "lunaris_agent_sockets", "Open agent WebSockets.", multiprocess_mode="livesum"
)
CONSOLE_QUEUED = Gauge(
    "lunaris_console_queued_events",
    "Events waiting to be sent to consoles, all sockets together.",
    multiprocess_mode="livesum",
)
CONSOLE_LONGEST_QUEUE = Gauge(
    "lunaris_console_longest_queue",
    "Events waiting for the slowest console socket.",
    multiprocess_mode="livemax",
)
BUS_BACKLOG = Gauge(
    "lunaris_event_bus_backlog",
    "Bus messages received and not yet handled.",
    multiprocess_mode="livesum",
)
CONSOLE_RESYNCS = Counter(
    "lunaris_console_resyncs", "Times a console fell behind and was told to reload."
)
CONSOLE_DROPS = Counter(
    "lunaris_console_drops", "Console sockets closed for not reading their events."
)


class MetricsMiddleware:
    """Times every HTTP request; outermost, so requests answered by other middleware (the
    heartbeat fast path, a 413) are counted with the rest."""

    def __init__(self, app: ASGIApp, *, early_paths: Collection[str] = ()) -> None:
        self.app = app
        self._early_paths = frozenset(early_paths)
        """Routes without parameters that may be answered before routing (the fast path)."""
        self._series: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self._histogram(scope, status).observe(time.perf_counter() - started)

    def _histogram(self, scope: Scope, status: int) -> Histogram:
        # ``labels()`` takes a lock and builds its key each time: keep the series at hand.
        method = scope["method"] if scope["method"] in _METHODS else "other"
        key = (method, self._route(scope), status // 100)
        series = self._series.get(key)
        if series is None:
            series = REQUEST_SECONDS.labels(method, key[1], f"{key[2]}xx")
            self._series[key] = series
        return series

    def _route(self, scope: Scope) -> str:
        """The route template (``/api/devices/{device_id}``), never the raw path, so a label
        has a bounded set of values."""
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", UNMATCHED_ROUTE))
        if scope.get("endpoint") is not None and scope.get("root_path"):
            return f"{scope['root_path']}/{{path}}"  # a mounted app: the static files
        path: str = scope["path"]
        return path if path in self._early_paths else UNMATCHED_ROUTE


@dataclass(frozen=True, slots=True)
class FleetFigures:
    devices: dict[str, int]
    commands: dict[str, int]


class _Figures(Collector):
    def __init__(self, figures: FleetFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterable[Metric]:
        devices = GaugeMetricFamily(
            "lunaris_devices", "Enrolled devices by status.", labels=["status"]
        )
        for status, count in self._figures.devices.items():
            devices.add_metric([status], count)
        commands = GaugeMetricFamily(
            "lunaris_commands", "Remote commands by status.", labels=["status"]
        )
        for status, count in self._figures.commands.items():
            commands.add_metric([status], count)
        return [devices, commands]


class ServerMetrics:
    """The metrics of one app: reads its state, caches the fleet figures."""

    def __init__(
        self, state: AppState, fleet: Callable[[AppState], Awaitable[FleetFigures]]
    ) -> None:
        """``fleet`` reads the devices and commands by status (dashboard/figures.py)."""
        self._state = state
        self._fleet = fleet
        self._figures: FleetFigures | None = None
        self._figures_at = 0.0
        self._figures_lock = asyncio.Lock()
        self._resyncs_seen = 0
        self._drops_seen = 0

    def refresh(self) -> None:
        """Copies this process's socket and queue figures into the metrics."""
        realtime = self._state.realtime
        queues = realtime.console.queue_lengths()
        CONSOLE_SOCKETS.set(len(queues))
        AGENT_SOCKETS.set(realtime.agents.local_count)
        CONSOLE_QUEUED.set(sum(queues))
        CONSOLE_LONGEST_QUEUE.set(max(queues, default=0))
        BUS_BACKLOG.set(realtime.bus.backlog)
        # The hub counts since the process started; the counters move by the difference.
        hub = realtime.console
        CONSOLE_RESYNCS.inc(hub.resyncs - self._resyncs_seen)
        CONSOLE_DROPS.inc(hub.drops - self._drops_seen)
        self._resyncs_seen, self._drops_seen = hub.resyncs, hub.drops

    async def run_refresher(self) -> None:
        """With several workers, each keeps its figures fresh for whichever one is scraped."""
        directory = multiprocess_directory()
        if directory is None:
            return
        forget_dead_processes(directory)
        try:
            await run_every(REFRESH_S, self._refresh_now, what="metrics refresh")
        finally:
            multiprocess.mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]

    async def _refresh_now(self) -> None:
        self.refresh()

    async def figures(self) -> FleetFigures:
        async with self._figures_lock:
            if self._figures is None or time.monotonic() - self._figures_at > FIGURES_TTL_S:
                self._figures = await self._fleet(self._state)
                self._figures_at = time.monotonic()
            return self._figures

    async def exposition(self) -> bytes:
        self.refresh()
        figures = CollectorRegistry(auto_describe=False)
        figures.register(_Figures(await self.figures()))
        return generate_latest(process_registry()) + generate_latest(figures)


def multiprocess_directory() -> Path | None:
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    return Path(directory) if directory else None


def process_registry() -> CollectorRegistry:
    """This process's metrics, or, with several workers, all workers' summed."""
    directory = multiprocess_directory()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def forget_dead_processes(directory: Path) -> None:
    """Removes the live figures of workers that died without cleaning up (a crash): the
    supervisor started this one in their place."""
    for path in directory.glob("gauge_live*.db"):
        match = _LIVE_FILE.fullmatch(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def may_read_metrics(request: Request, settings: Settings) -> bool | None:
    """True: allowed; False: a token is configured and was not given (401); None: metrics
    are not offered to this caller (404)."""
    if settings.metrics_token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), settings.metrics_token.encode()
        )
    if settings.env is Environment.DEV and request.client is not None:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(request.client.host).is_loopback or None
    return None


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    state: AppState = request.app.state.lunaris
    allowed = may_read_metrics(request, state.settings)
    if allowed is None:
        return Response("not found\n", status_code=404, media_type="text/plain")
    if not allowed:
        return Response(
            "a metrics token is required (Authorization: Bearer <token>)\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    server_metrics: ServerMetrics = request.app.state.metrics
    return Response(await server_metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

"""The simulated fleet at work: N virtual devices in one process over one shared client.

Each device keeps its own ``config.json`` (id, token, and its made-up hostname and OS) in
``state_dir/agent-NNNN/``, so a restarted simulator speaks for the same devices instead of
enrolling new ones. Each runs the real agent runtime with its :class:`Inventory` for winget.
"""

import asyncio
import contextlib
import logging
import random
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import httpx

from lunaris_agent import config as config_file
from lunaris_agent.client import AgentClient, ServerUnavailable
from lunaris_agent.config import AgentConfig, ConfigError
from lunaris_agent.identity import DeviceFacts
from lunaris_agent.machine import ChangingFacts
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.runtime.exits import AgentStopped, ExitCode
from lunaris_agent.simulate.catalog import DEPARTMENTS, OS_VERSIONS
from lunaris_agent.simulate.inventory import DEFAULT_APPS, Inventory
from lunaris_protocol import (
    HeartbeatRequest,
    HeartbeatResponse,
    InventoryReport,
    InventoryReportResponse,
    RegisterRequest,
    RegisterResponse,
    UpdateReport,
    UpdateReportResponse,
)
from lunaris_protocol.backoff import Backoff

log = logging.getLogger(__name__)

ONCE_ATTEMPTS = 4
"""With ``once``, give a device up after this many unreachable tries instead of waiting on."""
ONCE_FIRST_RETRY_S = 1.0
ONCE_RETRY_CAP_S = 10.0
PROGRESS_EVERY_S = 30.0
HOSTNAME_KEY: Final = "simulated_hostname"
OS_VERSION_KEY: Final = "simulated_os_version"


@dataclass(frozen=True)
class SimulationOptions:
    api_url: str
    enrollment_secret: str
    state_dir: Path
    count: int = 10
    once: bool = False
    """Register when needed, then one heartbeat, one report and one inventory per device, and
    stop."""
    duration_s: float | None = None
    """Stop after this long; run until cancelled when None."""
    heartbeat_interval_s: float | None = None
    """Overrides what the server asks for."""
    scan_interval_s: float | None = None
    inventory_interval_s: float | None = None
    apps: int = DEFAULT_APPS
    """About how many programs each device's ``winget list`` shows (a fifth more or less)."""
    concurrency: int = 20
    """Requests in flight at once, across all devices."""


@dataclass
class FleetStats:
    registered: int = 0
    heartbeats: int = 0
    reports: int = 0
    scan_errors: int = 0
    changes: int = 0
    """Updates the server counted as added, changed or removed."""
    inventories: int = 0
    full_inventories: int = 0
    """Inventories sent with their list (the rest went as a digest alone)."""
    retries: int = 0
    failed_devices: int = 0

    def __str__(self) -> str:
        return (
            f"registered {self.registered}, heartbeats {self.heartbeats}, "
            f"reports sent {self.reports} ({self.scan_errors} scan errors, "
            f"{self.changes} changes), inventories sent {self.inventories} "
            f"({self.full_inventories} with the list), retries {self.retries}, "
            f"failed devices {self.failed_devices}"
        )


class CorruptStateFile(Exception):
    """A device's config cannot be read; delete its directory to enroll that device anew."""


class FleetClient(AgentClient):
    """The real client, shared by every virtual device: it counts what the fleet does and
    limits the requests in flight."""

    def __init__(
        self,
        api_url: str,
        *,
        stats: FleetStats,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_url, transport=transport)
        self.stats = stats
        self._slots = asyncio.Semaphore(concurrency)

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        response = await super().register(request)
        self.stats.registered += 1
        return response

    async def heartbeat(self, token: str, request: HeartbeatRequest) -> HeartbeatResponse:
        response = await super().heartbeat(token, request)
        self.stats.heartbeats += 1
        return response

    async def report(self, token: str, report: UpdateReport) -> UpdateReportResponse:
        outcome = await super().report(token, report)
        self.stats.reports += 1
        self.stats.scan_errors += report.scan_error is not None
        self.stats.changes += outcome.added + outcome.changed + outcome.removed
        return outcome

    async def inventory(self, token: str, report: InventoryReport) -> InventoryReportResponse:
        answer = await super().inventory(token, report)
        self.stats.inventories += 1
        self.stats.full_inventories += report.software is not None
        return answer

    async def _post(self, *args: Any, **kwargs: Any) -> Any:
        async with self._slots:
            try:
                return await super()._post(*args, **kwargs)
            except ServerUnavailable:
                self.stats.retries += 1
                raise


def _hostname(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "DESKTOP-" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=7))
    return f"LT-{rng.choice(DEPARTMENTS)}-{rng.randrange(1, 10_000):04d}"


def load_fleet(options: SimulationOptions) -> list[AgentConfig]:
    """The first ``count`` devices of the state directory, enrolling new ones as needed. The
    enrollment secret is given to every device in memory only, so one whose token the server
    forgot (a reset database) registers again."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    fleet = []
    for index in range(options.count):
        path = options.state_dir / f"agent-{index:04d}" / config_file.CONFIG_FILE_NAME
        try:
            config = config_file.load(path) if path.exists() else _new_device(path, options)
        except ConfigError as error:
            raise CorruptStateFile(str(error)) from error
        if not isinstance(config.extra.get(HOSTNAME_KEY), str):
            raise CorruptStateFile(f"{path}: {HOSTNAME_KEY} is missing")
        fleet.append(replace(config, enrollment_secret=options.enrollment_secret))
    return fleet


def _new_device(path: Path, options: SimulationOptions) -> AgentConfig:
    device_id = uuid4()
    rng = random.Random(device_id.int)  # noqa: S311 - seeded on purpose: stable per device
    config = AgentConfig(
        path=path,
        api_url=options.api_url,
        device_id=device_id,
        extra={HOSTNAME_KEY: _hostname(rng), OS_VERSION_KEY: rng.choice(OS_VERSIONS)},
    )
    config_file.save(config)
    return config


MODELS: Final = (
    ("Dell Inc.", "Latitude 7440"),
    ("HP", "HP EliteBook 840 G10 Notebook PC"),
    ("LENOVO", "21HD003GGE"),
    ("Microsoft Corporation", "Surface Laptop 5"),
)
USERS: Final = ("anna", "ben", "chloe", "deniz", "emil", "fatima", "georg", "hana")


def facts_of(config: AgentConfig) -> DeviceFacts:
    """The same for the same device every time: drawn from its id."""
    rng = random.Random(config.device_id.int if config.device_id else 0)  # noqa: S311 - stable
    manufacturer, model = rng.choice(MODELS)
    serial = "".join(rng.choices(string.ascii_uppercase + string.digits, k=10))
    user = "" if rng.random() < 0.2 else f"CONTOSO\\{rng.choice(USERS)}"  # nobody on a fifth
    address = f"10.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    changing = ChangingFacts(user, [address], reboot_pending=rng.random() < 0.05)
    return DeviceFacts(
        hostname=str(config.extra[HOSTNAME_KEY]),
        os_version=str(config.extra.get(OS_VERSION_KEY, OS_VERSIONS[0])),
        model=model,
        manufacturer=manufacturer,
        serial_number=serial,
        changing=lambda: changing,
    )


@dataclass
class Fleet:
    """What all virtual devices share: one client, the options, the counters."""

    client: FleetClient
    options: SimulationOptions
    jitter: random.Random = field(default_factory=random.Random)

    @property
    def stats(self) -> FleetStats:
        return self.client.stats

    async def run(self, config: AgentConfig) -> None:
        assert config.device_id is not None
        inventory = Inventory(config.device_id, apps=self.options.apps)

        async def scan() -> UpdateReport:
            return inventory.scan()

        async def list_installed() -> InventoryReport:
            return inventory.list_installed()

        agent = Agent(
            config,
            self.client,
            scanner=scan,
            facts=facts_of(config),
            rng=self.jitter,
            record_contact=False,
            heartbeat_interval_s=self.options.heartbeat_interval_s,
            scan_interval_s=self.options.scan_interval_s,
            install=inventory.install,
            inventory=list_installed,
            inventory_interval_s=self.options.inventory_interval_s,
        )
        try:
            if self.options.once:
                await self._once(agent)
            else:
                await agent.run(asyncio.Event())
        except AgentStopped as error:
            self.stats.failed_devices += 1
            log.error("%s: giving up: %s", facts_of(config).hostname, error)

    async def _once(self, agent: Agent) -> None:
        backoff = Backoff(ONCE_RETRY_CAP_S, self.jitter, first_s=ONCE_FIRST_RETRY_S)
        for attempt in range(1, ONCE_ATTEMPTS + 1):
            if await agent.once() == ExitCode.OK:
                return
            if attempt < ONCE_ATTEMPTS:
                await asyncio.sleep(backoff.next_delay())
        self.stats.failed_devices += 1


async def simulate(
    options: SimulationOptions, *, transport: httpx.AsyncBaseTransport | None = None
) -> FleetStats:
    """Runs the fleet until ``once`` is done, ``duration_s`` is over, or it is cancelled."""
    configs = load_fleet(options)
    stats = FleetStats()
    client = FleetClient(
        options.api_url, stats=stats, concurrency=options.concurrency, transport=transport
    )
    async with client:
        fleet = Fleet(client, options)
        progress = asyncio.create_task(_log_progress(stats))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.duration_s), asyncio.TaskGroup() as group:
                    for config in configs:
                        group.create_task(fleet.run(config))
        finally:
            progress.cancel()
    log.info("%d devices: %s", options.count, stats)
    return stats


async def _log_progress(stats: FleetStats) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        log.info("%s", stats)

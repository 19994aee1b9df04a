"""Virtual agents for demos and load tests: N devices in one process, each one the real
agent runtime (:class:`lunaris_agent.runtime.agent.Agent`) over the real client, with winget
replaced by a simulated inventory.

Each device keeps its own ``config.json`` (id, token, and its made-up hostname and OS) in
``state_dir/agent-NNNN/``, so a restarted simulator speaks for the same devices instead of
enrolling new ones. What a device reports is drawn from a catalog of real winget packages by a
generator seeded with its id: the same device always starts from the same list, then a few
updates are resolved and new ones detected per scan, so the console has history to show.
"""

import asyncio
import contextlib
import logging
import random
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import httpx

from lunaris_agent import config as config_file
from lunaris_agent.backoff import Backoff
from lunaris_agent.client import AgentClient, ServerUnavailable
from lunaris_agent.config import AgentConfig, ConfigError
from lunaris_agent.identity import DeviceFacts
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.runtime.exits import AgentStopped, ExitCode
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_protocol import (
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    ScanError,
    UpdateItem,
    UpdateReport,
    UpdateReportResponse,
)

log = logging.getLogger(__name__)

# Identifier, name, installed versions seen across the fleet ("|"-separated), available.
# Ids without a dot are Microsoft Store ids; an id ending in "…" is one winget truncated.
CATALOG: tuple[tuple[str, str, str, str], ...] = (
    ("Mozilla.Firefox", "Mozilla Firefox (x64 en-US)", "131.0.3|132.0.2", "133.0"),
    ("Google.Chrome", "Google Chrome", "130.0.6723.117|131.0.6778.86", "131.0.6778.109"),
    ("Microsoft.Edge", "Microsoft Edge", "130.0.2849.80", "131.0.2903.51"),
    ("7zip.7zip", "7-Zip 23.01 (x64)", "23.01|22.01", "24.08"),
    ("Microsoft.VisualStudioCode", "Microsoft Visual Studio Code", "1.94.2|1.95.1", "1.95.3"),
    ("Notepad++.Notepad++", "Notepad++ (64-bit x64)", "8.6.9|8.7", "8.7.1"),
    ("VideoLAN.VLC", "VLC media player", "3.0.20|3.0.18", "3.0.21"),
    ("Zoom.Zoom", "Zoom Workplace (64-bit)", "6.1.11.45504|6.2.5.50876", "6.2.10.51437"),
    ("Microsoft.Teams", "Microsoft Teams", "Unknown|24277.3502.3161.3007", "24295.605.3225.8804"),
    ("Microsoft.Office", "Microsoft 365 - en-us", "16.0.17928.20156", "16.0.18129.20116"),
    ("Microsoft.OneDrive", "Microsoft OneDrive", "24.186.0915.0001", "24.201.1006.0005"),
    ("Git.Git", "Git", "2.46.2|2.47.0", "2.47.1"),
    ("Python.Python.3.12", "Python 3.12.6 (64-bit)", "3.12.6|3.12.7", "3.12.8"),
    ("Python.Python.3.11", "Python 3.11.7 (64-bit)", "3.11.7|3.11.8", "3.11.9"),
    ("Microsoft.DotNet.DesktopRuntime.8", ".NET Desktop Runtime 8.0.10", "8.0.8|8.0.10", "8.0.11"),
    ("Microsoft.DotNet.DesktopRuntime.6", ".NET Desktop Runtime 6.0.33", "6.0.33", "6.0.36"),
    ("Microsoft.DotNet.AspNetCore.8", "ASP.NET Core Runtime 8.0.10", "8.0.10", "8.0.11"),
    ("Microsoft.VCRedist.2015+.x64", "VC++ 2015-2022 Redist x64", "14.40.33810.0", "14.42.34433.0"),
    ("Microsoft.VCRedist.2015+.x86", "VC++ 2015-2022 Redist x86", "14.38.33135.0", "14.42.34433.0"),
    ("Microsoft.DotNet.HostingBundl…", "ASP.NET Core Hosting Bundle", "8.0.8", "8.0.11"),
    ("Microsoft.VisualStudio.2022.Bu…", "Visual Studio Build Tools 2022", "17.11.5", "17.12.0"),
    ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat (64-bit)", "24.004.20220", "24.005.20307"),
    ("Foxit.FoxitReader", "Foxit PDF Reader", "2024.3.0.26795", "2024.4.0.27683"),
    ("Discord.Discord", "Discord", "1.0.9164|1.0.9171", "1.0.9173"),
    ("Spotify.Spotify", "Spotify", "1.2.48.405.gf2c48e6f", "1.2.50.335.g5e2860a8"),
    ("SlackTechnologies.Slack", "Slack", "4.40.126|4.41.97", "4.41.105"),
    ("Cisco.Webex", "Webex", "44.8.0.30404", "44.10.1.31028"),
    ("Citrix.Workspace", "Citrix Workspace 2405", "24.5.0.102", "24.9.10.28"),
    ("TeamViewer.TeamViewer", "TeamViewer", "< 15.58.5|15.57.5", "15.59.3"),
    ("Microsoft.PowerToys", "PowerToys (Preview) x64", "0.85.1", "0.86.0"),
    ("Microsoft.PowerShell", "PowerShell 7-x64", "7.4.5", "7.4.6"),
    ("Microsoft.WindowsTerminal", "Windows Terminal", "1.20.11781.0", "1.21.3231.0"),
    ("Oracle.JavaRuntimeEnvironment", "Java 8 Update 421 (64-bit)", "8.0.4210.9", "8.0.4310.10"),
    ("EclipseAdoptium.Temurin.21.JDK", "Temurin JDK 21.0.4+7 (x64)", "21.0.4.7", "21.0.5.11"),
    ("OpenJS.NodeJS.LTS", "Node.js", "20.17.0|20.18.0", "22.11.0"),
    ("Docker.DockerDesktop", "Docker Desktop", "4.34.2|4.35.1", "4.36.0"),
    ("Postman.Postman", "Postman x64", "11.14.0", "11.19.0"),
    ("JetBrains.IntelliJIDEA.Community", "IntelliJ IDEA CE 2024.2.3", "2024.2.3", "2024.3"),
    ("Microsoft.AzureCLI", "Microsoft Azure CLI (64-bit)", "2.65.0", "2.67.0"),
    ("Amazon.AWSCLI", "AWS Command Line Interface v2", "2.18.10", "2.22.4"),
    ("Hashicorp.Terraform", "Terraform", "1.9.7", "1.10.0"),
    ("Microsoft.Azure.StorageExplorer", "Microsoft Azure Storage Explorer", "1.35.0", "1.36.2"),
    ("Wireshark.Wireshark", "Wireshark 4.4.0 x64", "4.4.0", "4.4.2"),
    ("WinSCP.WinSCP", "WinSCP 6.3.5", "6.3.5", "6.3.6"),
    ("PuTTY.PuTTY", "PuTTY release 0.81 (64-bit)", "0.81.0.0", "0.82.0.0"),
    ("WinMerge.WinMerge", "WinMerge 2.16.42.1 x64", "2.16.42.1", "2.16.44"),
    ("Mozilla.Thunderbird", "Mozilla Thunderbird (x64 en-US)", "128.3.1esr", "128.5.0esr"),
    ("TheDocumentFoundation.LibreOffice", "LibreOffice 24.8.2.1", "24.8.2.1", "24.8.3.2"),
    ("GIMP.GIMP", "GIMP 2.10.36", "2.10.36", "2.10.38"),
    ("Inkscape.Inkscape", "Inkscape", "1.3.2", "1.4"),
    ("OBSProject.OBSStudio", "OBS Studio", "30.1.2", "30.2.3"),
    ("Audacity.Audacity", "Audacity 3.6.4", "3.6.4", "3.7.0"),
    ("KeePassXCTeam.KeePassXC", "KeePassXC", "2.7.8", "2.7.9"),
    ("Bitwarden.Bitwarden", "Bitwarden", "2024.9.0", "2024.11.1"),
    ("voidtools.Everything", "Everything 1.4.1.1024 (x64)", "1.4.1.1024", "1.4.1.1026"),
    ("ShareX.ShareX", "ShareX", "16.1.0", "17.0.0"),
    ("RARLab.WinRAR", "WinRAR 7.00 (64-bit)", "7.00.0", "7.01.0"),
    ("Logitech.OptionsPlus", "Logi Options+", "1.80.641108", "1.83.662045"),
    ("Dell.CommandUpdate", "Dell Command | Update for Windows Universal", "5.3.0", "5.4.0"),
    ("Lenovo.SystemUpdate", "Lenovo System Update", "5.08.02.25", "5.08.03.59"),
    ("9NBLGGH4NNS1", "App Installer", "1.23.1911.0", "1.24.25200.0"),
    ("9NKSQGP7F2NH", "WhatsApp", "2.2442.6.0", "2.2446.3.0"),
    ("9WZDNCRFJ3TJ", "Netflix", "6.99.5.0", "6.99.6.0"),
    ("9WZDNCRFHVJL", "OneNote for Windows 10", "16001.14326.22094.0", "16001.14326.22134.0"),
)

EXPLICIT_TARGETING = frozenset({"Discord.Discord", "Spotify.Spotify", "Microsoft.Edge"})
"""Updates winget lists but installs only when asked for by id."""

SCAN_ERRORS = (
    ScanError(code="0x8A15000F", message="Data required by the source is missing"),
    ScanError(code="0x8A15000B", message="The configured source information is corrupt"),
    ScanError(code="timeout", message="winget did not finish within 300 s"),
)
SCAN_ERROR_RATE = 0.04
INSTALL_SECONDS = (1.0, 4.0)
INSTALL_FAILURE_RATE = 0.1
INSTALL_REBOOT_RATE = 0.05
RESOLVE_RATE = 0.05
"""Chance, per update and scan, that it was installed since the last scan."""
DETECT_RATE = 0.5
"""Chance, per scan, that one new update shows up."""

OS_VERSIONS = (
    "Windows 11 Pro 23H2 (10.0.22631.4460)",
    "Windows 11 Pro 24H2 (10.0.26100.2314)",
    "Windows 11 Enterprise 23H2 (10.0.22631.4602)",
    "Windows 11 Enterprise 24H2 (10.0.26100.2605)",
    "Windows 10 Enterprise 22H2 (10.0.19045.5131)",
    "Windows 10 Pro 22H2 (10.0.19045.5247)",
)
DEPARTMENTS = ("FIN", "HR", "ENG", "OPS", "MKT", "SAL", "IT")

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
    """Register when needed, then one heartbeat and one report per device, and stop."""
    duration_s: float | None = None
    """Stop after this long; run until cancelled when None."""
    heartbeat_interval_s: float | None = None
    """Overrides what the server asks for."""
    scan_interval_s: float | None = None
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
    retries: int = 0
    failed_devices: int = 0

    def __str__(self) -> str:
        return (
            f"registered {self.registered}, heartbeats {self.heartbeats}, "
            f"reports sent {self.reports} ({self.scan_errors} scan errors, "
            f"{self.changes} changes), retries {self.retries}, "
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


def facts_of(config: AgentConfig) -> DeviceFacts:
    return DeviceFacts(
        hostname=str(config.extra[HOSTNAME_KEY]),
        os_version=str(config.extra.get(OS_VERSION_KEY, OS_VERSIONS[0])),
    )


class Inventory:
    """What ``winget upgrade`` shows on one virtual device, drifting a little every scan."""

    def __init__(self, device_id: UUID) -> None:
        self._rng = random.Random(f"inventory:{device_id}")  # noqa: S311 - stable per device
        picks = self._rng.sample(CATALOG, self._rng.randint(4, 18))
        self._pending = {row[0]: self._item(row) for row in picks}
        self._scanned = False

    def scan(self) -> UpdateReport:
        if self._scanned:
            self._drift()
        self._scanned = True
        if self._rng.random() < SCAN_ERROR_RATE:
            return UpdateReport(scan_error=self._rng.choice(SCAN_ERRORS))
        return UpdateReport(updates=list(self._pending.values()))

    async def install(self, package: str) -> InstallOutcome:
        """A remote action on the virtual PC: takes a few seconds, mostly works."""
        await asyncio.sleep(self._rng.uniform(*INSTALL_SECONDS))
        if package not in self._pending:
            return InstallOutcome("no_applicable_upgrade", package, None, "0x8A15002B")
        roll = self._rng.random()
        if roll < INSTALL_FAILURE_RATE:
            message = "Installer failed with exit code: 1603"
            return InstallOutcome("installer_failed", package, 1603, "0x8A150006", message)
        del self._pending[package]
        if roll < INSTALL_FAILURE_RATE + INSTALL_REBOOT_RATE:
            return InstallOutcome("success_reboot_required", package, 3010, None)
        return InstallOutcome("success", package, None, None)

    def _drift(self) -> None:
        for identifier in list(self._pending):
            if self._rng.random() < RESOLVE_RATE:
                del self._pending[identifier]
        if self._rng.random() < DETECT_RATE:
            new = [row for row in CATALOG if row[0] not in self._pending]
            if new:
                row = self._rng.choice(new)
                self._pending[row[0]] = self._item(row)

    def _item(self, row: tuple[str, str, str, str]) -> UpdateItem:
        identifier, name, installed, available = row
        return UpdateItem(
            package_identifier=identifier,
            name=name,
            installed_version=self._rng.choice(installed.split("|")),
            available_version=available,
            source="winget" if "." in identifier else "msstore",
            explicit_targeting=identifier in EXPLICIT_TARGETING,
            truncated=identifier.endswith("…"),
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
        inventory = Inventory(config.device_id)

        async def scan() -> UpdateReport:
            return inventory.scan()

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

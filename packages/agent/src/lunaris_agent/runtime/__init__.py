"""The agent at work: register once, heartbeat, scan, report; the same code on Windows (as a
service), Linux and macOS.

Loops share one :class:`~lunaris_agent.runtime.agent.Agent`:

- the heartbeat loop keeps the device online in the console and, whenever the server answers,
  sends what the spool holds;
- the scan loop runs winget at start and then every scan interval, puts the report in the
  spool first (so a crash or an outage loses nothing) and tries to send it;
- the inventory loop (when the agent is given an inventory) lists everything installed soon
  after start and then at most every inventory interval (and after every remote action),
  spools it and sends it digest first (``inventory``).

They run concurrently because a winget scan can take minutes, longer than the server waits
before it calls a silent device offline. Failures back off exponentially with jitter, capped at
the heartbeat interval (a retry then costs the server no more than a heartbeat would), and
``Retry-After`` wins when the server sends it. The server's refusal of the device token ends the
run with a clear error, unless an enrollment secret is still configured to register anew.

This module holds the entry points (:func:`run`, :func:`once`: what ``lunaris-agent run`` and
the Windows service call) and wires a PC's agent to winget. The package's other modules are
platform-neutral: ``agent`` (the steps and the loops), ``inventory`` (the software inventory's
loop and sending), ``registration`` (the device token), ``contact`` (``state.json`` for
``status``), ``exits`` (how a run ends).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from lunaris_agent import config as config_file
from lunaris_agent import installer_values
from lunaris_agent.client import AgentClient
from lunaris_agent.commands import Installer, UserInstalls
from lunaris_agent.config import AgentConfig, ConfigError
from lunaris_agent.per_user import (
    USER_LOCATIONS_FILE,
    Locations,
    UserScans,
    locations_from_bytes,
    locations_to_bytes,
)
from lunaris_agent.runtime.agent import Agent, Scanner
from lunaris_agent.runtime.exits import AgentStopped, ExitCode
from lunaris_agent.runtime.inventory import Inventory
from lunaris_agent.selfupdate import windows_self_update
from lunaris_agent.sessions import ProfileSessions, UserSessions
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_agent.winget.report import inventory_from_list, report_from_scan
from lunaris_protocol import InventoryReport, UpdateReport

__all__ = [
    "ExitCode",
    "once",
    "prepare",
    "run",
    "user_sessions",
    "winget_installer",
    "winget_inventory",
    "winget_scanner",
]

log = logging.getLogger(__name__)

SCAN_TIMEOUT_S: Final = 600.0
INSTALL_TIMEOUT_S: Final = 3600.0
"""Per package: some installers (Office, Visual Studio) take most of an hour."""


def winget_scanner(winget_path: Path | None, *, timeout_s: float = SCAN_TIMEOUT_S) -> Scanner:
    async def scan() -> UpdateReport:
        from lunaris_agent.winget import upgrade

        result = await upgrade.scan(winget_path, timeout_s=timeout_s)
        if result.error is None:
            log.info("scan: %d updates waiting", len(result.updates))
        else:
            log.warning("scan failed: %s %s", result.error.code or "", result.error.message)
        return report_from_scan(result)

    return scan


def winget_inventory(winget_path: Path | None, *, timeout_s: float = SCAN_TIMEOUT_S) -> Inventory:
    async def list_software() -> InventoryReport:
        from lunaris_agent.winget import upgrade

        result = await upgrade.list_installed(winget_path, timeout_s=timeout_s)
        if result.error is None:
            log.info("inventory: %d apps installed", len(result.software))
        else:
            log.warning("inventory failed: %s %s", result.error.code or "", result.error.message)
        return inventory_from_list(result)

    return list_software


def winget_installer(
    winget_path: Path | None, *, timeout_s: float = INSTALL_TIMEOUT_S
) -> Installer:
    async def install(package: str, version: str | None) -> InstallOutcome:
        from lunaris_agent.winget import upgrade

        return await upgrade.install_package(
            winget_path, package, version=version, timeout_s=timeout_s
        )

    return install


def user_sessions(config: AgentConfig, *, windows_service: bool) -> UserSessions | None:
    """Where per-user scans and installs run: the stand-in sessions the config names, or, in
    the Windows service (SYSTEM, which may take a user's token), Windows' own; else none."""
    if config.user_sessions_file is not None:
        return ProfileSessions(config.user_sessions_file)
    if windows_service and sys.platform == "win32":
        from lunaris_agent.windows.user_sessions import WtsUserSessions

        return WtsUserSessions()
    return None


def prepare(config_path: Path) -> AgentConfig:
    """Takes what the MSI was given (on the first start after an install), loads the config,
    secures its directory and gives the device its id."""
    if installer_values.take(config_path):
        log.info("took the values given to the installer into %s", config_path)
    config = config_file.load(config_path)
    config_file.secure_data_dir(config.directory)
    return config_file.with_device_id(config)


def run(
    stop_event: threading.Event,
    *,
    config_path: Path | None = None,
    self_update: bool = False,
    per_user: bool = False,
) -> int:
    """Runs the agent until ``stop_event`` is set (from any thread: the Windows service's
    control handler, a signal handler). Returns an :class:`ExitCode`. ``self_update``: this
    is the installed Windows service, which an MSI upgrade stops and starts again, so it may
    take UPDATE_AGENT commands (when msiexec is there). ``per_user``: this is the service,
    running as SYSTEM, so it scans and installs in the logged-on users' sessions too."""
    path = config_path or config_file.default_config_path()
    return asyncio.run(_run(stop_event, path, self_update=self_update, per_user=per_user))


def once(*, config_path: Path | None = None) -> int:
    return asyncio.run(_once(config_path or config_file.default_config_path()))


async def _run(
    stop_event: threading.Event, config_path: Path, *, self_update: bool, per_user: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A thread blocked on the caller's event costs no CPU, unlike polling it.
    threading.Thread(
        target=lambda: (stop_event.wait(), loop.call_soon_threadsafe(stop.set)),
        name="lunaris-stop-watch",
        daemon=True,
    ).start()
    return await _with_agent(
        config_path, lambda agent: agent.run(stop), self_update=self_update, per_user=per_user
    )


async def _once(config_path: Path) -> int:
    return await _with_agent(config_path, lambda agent: agent.once())


async def _with_agent(
    config_path: Path,
    work: Callable[[Agent], Awaitable[ExitCode]],
    *,
    self_update: bool = False,
    per_user: bool = False,
) -> int:
    try:
        config = prepare(config_path)
    except ConfigError as error:
        log.error("%s", error)
        return ExitCode.CONFIG
    log.info("agent starting: device %s, server %s", config.device_id, config.api_url)
    scanner = winget_scanner(config.winget_path)
    inventory = winget_inventory(config.winget_path)
    user_installs = None
    sessions = user_sessions(config, windows_service=per_user)
    if sessions is not None:
        users = UserScans(
            sessions,
            config.winget_path,
            scan_timeout_s=SCAN_TIMEOUT_S,
            install_timeout_s=INSTALL_TIMEOUT_S,
            **_kept_locations(config.path.parent / USER_LOCATIONS_FILE),
        )
        scanner, inventory = users.scanner(scanner), users.inventory(inventory)
        user_installs = UserInstalls(locate=users.locate, install=users.install)
    async with AgentClient(config.api_url, verify=config.tls_verify) as client:
        agent = Agent(
            config,
            client,
            scanner=scanner,
            install=winget_installer(config.winget_path),
            inventory=inventory,
            self_update=windows_self_update() if self_update else None,
            user_installs=user_installs,
        )
        try:
            code = await work(agent)
        except AgentStopped as error:
            log.error("%s", error)
            return error.code
    log.info("agent stopped")
    return code


def _kept_locations(path: Path) -> dict[str, Any]:
    """UserScans' ``remembered`` and ``keep``: the places of the last report, in ``path``."""
    remembered: Locations = {}
    try:
        if path.exists():
            remembered = locations_from_bytes(path.read_bytes())
    except (OSError, ValueError) as error:
        log.warning("ignoring %s: %s", path, error)

    def keep(locations: Locations) -> None:
        try:
            config_file.write_private_file(path, locations_to_bytes(locations))
        except OSError as error:
            log.warning("could not keep where the packages are in %s: %s", path, error)

    return {"remembered": remembered, "keep": keep}

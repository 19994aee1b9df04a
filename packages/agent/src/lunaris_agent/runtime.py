"""The agent at work: register once, heartbeat, scan, report; the same code on Windows (as a
service), Linux and macOS.

Two loops share one :class:`Agent`:

- the heartbeat loop keeps the device online in the console and, whenever the server answers,
  sends what the spool holds;
- the scan loop runs winget at start and then every scan interval, puts the report in the
  spool first (so a crash or an outage loses nothing) and tries to send it.

They run concurrently because a winget scan can take minutes, longer than the server waits
before it calls a silent device offline. Failures back off exponentially with jitter, capped at
the heartbeat interval (a retry then costs the server no more than a heartbeat would), and
``Retry-After`` wins when the server sends it. The server's refusal of the device token ends the
run with a clear error, unless an enrollment secret is still configured to register anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Final, TypeVar
from uuid import UUID

from pydantic import ValidationError

from lunaris_agent import config as config_file
from lunaris_agent import installer_values
from lunaris_agent.backoff import Backoff
from lunaris_agent.client import (
    AgentApiError,
    AgentClient,
    AuthRejected,
    ReenrollmentPending,
    RequestRefused,
    ServerUnavailable,
)
from lunaris_agent.commands import (
    LEDGER_FILE,
    PROGRESS_KIND,
    CommandLedger,
    CommandRunner,
    Installer,
    progress_from_payload,
)
from lunaris_agent.config import AgentConfig, ConfigError
from lunaris_agent.identity import DeviceFacts, new_registration_key, read_device_facts
from lunaris_agent.push import PushChannel
from lunaris_agent.spool import Spool, SpooledResult
from lunaris_agent.status import ContactState
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_agent.winget.results import ScanResult
from lunaris_protocol import (
    HeartbeatRequest,
    HeartbeatResponse,
    NewIdentity,
    RegisterRequest,
    ScanError,
    UpdateItem,
    UpdateReport,
)
from lunaris_protocol.limits import MAX_ERROR_CODE, MAX_MESSAGE

log = logging.getLogger(__name__)

T = TypeVar("T")

Scanner = Callable[[], Awaitable[UpdateReport]]
"""Produces the current update report: winget on a PC, an inventory in the simulator."""

JITTER: Final = 0.1
"""Intervals vary by ±10% so a fleet started together does not pulse."""
SCAN_TIMEOUT_S: Final = 600.0
INSTALL_TIMEOUT_S: Final = 3600.0
"""Per package: some installers (Office, Visual Studio) take most of an hour."""


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    """``once`` could not finish: the server was unreachable or refused a message."""
    CONFIG = 2
    REJECTED = 3
    """The server refused the enrollment secret or the device token: someone must act."""


class AgentStopped(Exception):
    """The agent cannot go on without someone's help; the message says what to do."""

    def __init__(self, message: str, code: ExitCode = ExitCode.REJECTED) -> None:
        super().__init__(message)
        self.code = code


def report_from_scan(result: ScanResult) -> UpdateReport:
    """The wire report for one scan. A winget failure becomes a scan error, never an empty
    list (the server would take that to mean every update was installed)."""
    if result.error is not None:
        return UpdateReport(
            scan_error=ScanError(
                code=(result.error.code or None) and result.error.code[:MAX_ERROR_CODE],
                message=result.error.message[:MAX_MESSAGE],
            )
        )
    try:
        return UpdateReport(
            updates=[
                UpdateItem(
                    package_identifier=row.package_identifier,
                    name=row.name,
                    installed_version=row.installed_version,
                    available_version=row.available_version,
                    source=row.source,
                    explicit_targeting=row.explicit_targeting,
                    truncated=row.truncated,
                )
                for row in result.updates
            ]
        )
    except ValidationError as error:
        # Rows the protocol cannot carry (too many, or too long): say so instead of cutting.
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        message = f"winget listed {len(result.updates)} updates this agent cannot report: "
        return UpdateReport(
            scan_error=ScanError(
                code="report_invalid", message=f"{message}{where}: {problem['msg']}"
            )
        )


async def _no_installs(package: str) -> InstallOutcome:
    return InstallOutcome.not_run(package, "this agent does not run installs")


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


def winget_installer(
    winget_path: Path | None, *, timeout_s: float = INSTALL_TIMEOUT_S
) -> Installer:
    async def install(package: str) -> InstallOutcome:
        from lunaris_agent.winget import upgrade

        return await upgrade.install_package(winget_path, package, timeout_s=timeout_s)

    return install


class Agent:
    """One device's conversation with the server. Not thread-safe: one event loop drives it."""

    def __init__(
        self,
        config: AgentConfig,
        client: AgentClient,
        *,
        scanner: Scanner,
        facts: DeviceFacts | None = None,
        spool: Spool | None = None,
        rng: random.Random | None = None,
        record_contact: bool = True,
        heartbeat_interval_s: float | None = None,
        scan_interval_s: float | None = None,
        install: Installer | None = None,
        push: bool = True,
    ) -> None:
        """``install`` runs remote actions' package installs (winget on a PC); without it the
        agent refuses commands. ``heartbeat_interval_s`` and ``scan_interval_s`` override what
        the server asks for: the simulator's compressed time. ``record_contact`` keeps
        state.json for `status`. ``push`` opens the socket on which commands arrive at once
        (they also ride on heartbeat answers)."""
        if config.device_id is None:
            raise ValueError("the config has no device id yet: use config.with_device_id")
        self.config = config
        self._client = client
        self._scanner = scanner
        self._facts = facts or read_device_facts()
        self._spool = spool or Spool(config.spool_dir)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._record_contact = record_contact
        self._heartbeat_override = heartbeat_interval_s
        self._scan_override = scan_interval_s
        self._registering = asyncio.Lock()
        self._sending = asyncio.Lock()
        self._heartbeat_backoff = Backoff(self._heartbeat_every, self._rng)
        self.commands = CommandRunner(
            ledger=CommandLedger(config.directory / LEDGER_FILE),
            spool=self._spool,
            install=install or _no_installs,
            list_updates=scanner,
            send=self._send_best_effort,
            after_command=self._rescan,
        )
        self.push = (
            PushChannel(
                config.api_url,
                token=lambda: self.config.device_token,
                on_command=self.commands.offer,
                verify=config.tls_verify,
                rng=self._rng,
            )
            if push
            else None
        )

    # -- one step each -----------------------------------------------------------------------

    async def heartbeat(self) -> HeartbeatResponse:
        request = HeartbeatRequest(
            hostname=self._facts.hostname,
            os_version=self._facts.os_version,
            agent_version=self._facts.agent_version,
        )
        response = await self._authorized(lambda token: self._client.heartbeat(token, request))
        self._remember_intervals(response.heartbeat_interval_s, response.scan_interval_s)
        if response.new_identity is not None:
            await self._take_identity(response.new_identity)
        for command in response.commands:
            self.commands.offer(command)
        return response

    async def scan(self) -> UpdateReport:
        """Scans and spools the result; sending is :meth:`send_spooled`'s job."""
        report = await self._scanner()
        self._spool.put_report(report)
        self._note_spool_health()
        return report

    async def send_spooled(self) -> None:
        """Sends what the spool holds: command progress first, in order, then the update
        snapshot. Raises :class:`ServerUnavailable` (the rest stays in the spool) or
        :class:`AgentStopped`; a message the server refuses is dropped, since sending it again
        cannot help."""
        async with self._sending:
            for spooled in self._spool.pending_results():
                await self._send_result(spooled)
            report = self._spool.pending_report()
            if report is None:
                return
            try:
                outcome = await self._authorized(lambda token: self._client.report(token, report))
            except RequestRefused as error:
                log.error("the server refused the update report, dropping it: %s", error)
                self._spool.report_sent(report)
                return
            self._spool.report_sent(report)
            log.debug(
                "report sent: %d added, %d changed, %d removed",
                outcome.added,
                outcome.changed,
                outcome.removed,
            )

    async def _take_identity(self, identity: NewIdentity) -> None:
        """An admin split the identity this PC shared with a clone: this PC is a new device.
        Progress of commands it ran under the shared identity is that record's, so it is
        sent first with the shared token; then the push socket and a fresh report use the new.
        If sending fails, the identity is not taken: the server offers it again."""
        async with self._sending:
            for spooled in self._spool.pending_results():
                await self._send_result(spooled)
        log.warning(
            "this PC shared device %s with another (a cloned disk): it is now device %s",
            self.device_id,
            identity.device_id,
        )
        self._save_config(
            replace(self.config, device_id=identity.device_id, device_token=identity.device_token)
        )
        if self.push is not None:
            await self.push.reconnect()
        await self._rescan()  # the new device's updates, now: it starts with none listed

    async def _send_result(self, spooled: SpooledResult) -> None:
        if spooled.kind != PROGRESS_KIND:
            log.error("unknown spooled message %r dropped", spooled.kind)
            self._spool.result_sent(spooled)
            return
        command_id, progress = progress_from_payload(spooled.payload)
        try:
            await self._authorized(
                lambda token: self._client.command_progress(token, command_id, progress)
            )
        except RequestRefused as error:
            log.error(
                "the server refused progress of command %s, dropping it: %s", command_id, error
            )
        self._spool.result_sent(spooled)

    async def _send_best_effort(self) -> None:
        try:
            await self.send_spooled()
        except ServerUnavailable as error:
            log.info("kept in the spool until the server answers: %s", error.message)

    async def _rescan(self) -> None:
        """After a remote action: the console should see what is left to update at once."""
        await self.scan()
        await self._send_best_effort()

    # -- whole runs ----------------------------------------------------------------------------

    async def once(self) -> ExitCode:
        """Heartbeat, send what was spooled, run the commands the heartbeat handed over, scan,
        report. Scans even when the server is down, so the report waits in the spool for the
        next run."""
        failed = False
        self.commands.report_interrupted()
        try:
            await self.heartbeat()
            await self.send_spooled()
        except (ServerUnavailable, RequestRefused) as error:
            log.error("%s", error)
            failed = True
        await self.commands.run_queued()
        await self.scan()
        try:
            await self.send_spooled()
        except ServerUnavailable as error:
            log.error("report kept in the spool: %s", error)
            failed = True
        return ExitCode.FAILED if failed else ExitCode.OK

    async def run(self, stop: asyncio.Event) -> ExitCode:
        """Runs the loops until ``stop`` is set; returns early only when the agent cannot go
        on (:class:`AgentStopped`), after logging why."""
        self.commands.report_interrupted()
        loops = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._scan_loop(), name="scan"),
            asyncio.create_task(self.commands.run_forever(), name="commands"),
        ]
        if self.push is not None:
            loops.append(asyncio.create_task(self.push.run_forever(), name="push"))
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([*loops, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*loops, stopped]:
                task.cancel()
            await asyncio.gather(*loops, stopped, return_exceptions=True)
        for task in done:
            if task is not stopped:
                task.result()  # re-raises AgentStopped, or a bug, to the caller
        return ExitCode.OK

    async def _heartbeat_loop(self) -> None:
        # After the first heartbeat, a random phase: PCs that boot together at 9:00 must not
        # heartbeat together all day.
        phase = self._rng.uniform(0.1, 1.0)
        while True:
            try:
                await self.heartbeat()
                await self.send_spooled()
            except ServerUnavailable as error:
                delay = self._heartbeat_backoff.next_delay(error.retry_after_s)
                self._note_failure(error, delay)
            except RequestRefused as error:
                log.error("the server refused the heartbeat: %s", error)
                delay = self._jittered(self._heartbeat_every)
            else:
                self._note_success()
                delay = self._jittered(self._heartbeat_every) * phase
                phase = 1.0
            await asyncio.sleep(delay)

    async def _scan_loop(self) -> None:
        while True:
            await self.scan()
            try:
                await self.send_spooled()
            except ServerUnavailable as error:
                # The heartbeat loop notices the server's return and sends it then.
                log.info("report kept in the spool until the server answers: %s", error.message)
            await asyncio.sleep(self._jittered(self._scan_every))

    @property
    def _heartbeat_every(self) -> float:
        return self._heartbeat_override or self.config.heartbeat_interval_s

    @property
    def _scan_every(self) -> float:
        return self._scan_override or self.config.scan_interval_s

    # -- registration and the token --------------------------------------------------------------

    async def _authorized(self, call: Callable[[str], Awaitable[T]]) -> T:
        token = self.config.device_token or await self._register(stale_token=None)
        try:
            return await call(token)
        except AuthRejected as error:
            token = await self._register(stale_token=token, rejected=error)
            return await call(token)

    async def _register(
        self, *, stale_token: str | None, rejected: AuthRejected | None = None
    ) -> str:
        async with self._registering:
            current = self.config.device_token
            if current is not None and current != stale_token:
                return current  # the other loop registered while this one waited
            secret = self.config.enrollment_secret
            if secret is None:
                if rejected is None:
                    raise AgentStopped(
                        f"{self.config.path} has neither a device token nor an enrollment "
                        "secret: run `lunaris-agent configure --enrollment-secret SECRET`"
                    )
                raise AgentStopped(
                    f"the server no longer accepts this device's token ({rejected}): the "
                    "device was revoked or removed. To enroll it again, run `lunaris-agent "
                    "configure --enrollment-secret SECRET` and restart the agent."
                )
            if rejected is not None:
                log.warning("the server refused the device token (%s); registering again", rejected)
            if self.config.registration_key is None:
                self._save_config(replace(self.config, registration_key=new_registration_key()))
            request = RegisterRequest(
                device_id=self.device_id,
                hostname=self._facts.hostname,
                os_version=self._facts.os_version,
                agent_version=self._facts.agent_version,
                enrollment_secret=secret,
                device_token=self.config.device_token,  # proof that this id is ours
                registration_key=self.config.registration_key,
            )
            try:
                response = await self._client.register(request)
            except ReenrollmentPending as waiting:
                log.warning("registration waits for an admin's approval: %s", waiting.message)
                raise  # as the server being unavailable: the loops ask again later
            except (AuthRejected, RequestRefused) as error:
                # The token (if any) stays in the config: the refusal changes nothing here.
                stopped = AgentStopped(
                    f"the server refused to register this device ({error.message}). If the "
                    "enrollment secret is wrong, expired or used up, run `lunaris-agent "
                    "configure --enrollment-secret SECRET`; otherwise ask an admin."
                )
                self._note_stopped(stopped)
                raise stopped from error
            # The secret has done its job: it must not stay readable on the PC.
            self._save_config(
                replace(
                    self.config,
                    device_token=response.device_token,
                    enrollment_secret=None,
                    registration_key=None,
                    heartbeat_interval_s=response.heartbeat_interval_s,
                    scan_interval_s=response.scan_interval_s,
                )
            )
            log.info("registered with %s as device %s", self.config.api_url, self.device_id)
            return response.device_token

    @property
    def device_id(self) -> UUID:
        assert self.config.device_id is not None  # checked in __init__
        return self.config.device_id

    # -- small things ------------------------------------------------------------------------------

    def _remember_intervals(self, heartbeat_s: int, scan_s: int) -> None:
        if (heartbeat_s, scan_s) != (self.config.heartbeat_interval_s, self.config.scan_interval_s):
            log.info(
                "server asks for heartbeats every %d s and scans every %d s", heartbeat_s, scan_s
            )
            self._save_config(
                replace(self.config, heartbeat_interval_s=heartbeat_s, scan_interval_s=scan_s)
            )
            self._heartbeat_backoff.cap_s = self._heartbeat_every

    def _save_config(self, updated: AgentConfig) -> None:
        config_file.save(updated)
        self.config = updated

    def _note_success(self) -> None:
        if self._heartbeat_backoff.failures:
            log.info(
                "server reachable again after %d failed attempts", self._heartbeat_backoff.failures
            )
        self._heartbeat_backoff.reset()
        self._save_contact(ContactState(last_contact_at=datetime.now(UTC)))

    def _note_failure(self, error: AgentApiError, delay: float) -> None:
        # Loud once, then quiet: an outage must not fill the log with the same line.
        level = logging.WARNING if self._heartbeat_backoff.failures == 1 else logging.DEBUG
        log.log(level, "server unavailable (%s); retrying in %.0f s", error, delay)
        previous = ContactState.load(self.config.state_path)
        self._save_contact(replace(previous, last_error=str(error)))

    def _note_stopped(self, stopped: AgentStopped) -> None:
        """Why the agent stopped, for `status`."""
        previous = ContactState.load(self.config.state_path)
        self._save_contact(replace(previous, last_error=str(stopped)))

    def _note_spool_health(self) -> None:
        """A spool failure (or its end) goes to state.json at once, for `status`."""
        if self._record_contact:
            saved = ContactState.load(self.config.state_path)
            if saved.spool_error != self._spool.write_error:
                self._save_contact(saved)

    def _save_contact(self, state: ContactState) -> None:
        if self._record_contact:
            state = replace(state, spool_error=self._spool.write_error)
            with contextlib.suppress(OSError):  # status display only; never stop for it
                state.save(self.config.state_path)

    def _jittered(self, seconds: float) -> float:
        return seconds * self._rng.uniform(1 - JITTER, 1 + JITTER)


# -- entry points ------------------------------------------------------------------------------


def prepare(config_path: Path) -> AgentConfig:
    """Takes what the MSI was given (on the first start after an install), loads the config,
    secures its directory and gives the device its id."""
    if installer_values.take(config_path):
        log.info("took the values given to the installer into %s", config_path)
    config = config_file.load(config_path)
    config_file.secure_data_dir(config.directory)
    return config_file.with_device_id(config)


def run(stop_event: threading.Event, *, config_path: Path | None = None) -> int:
    """Runs the agent until ``stop_event`` is set (from any thread: the Windows service's
    control handler, a signal handler). Returns an :class:`ExitCode`."""
    return asyncio.run(_run(stop_event, config_path or config_file.default_config_path()))


def once(*, config_path: Path | None = None) -> int:
    return asyncio.run(_once(config_path or config_file.default_config_path()))


async def _run(stop_event: threading.Event, config_path: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A thread blocked on the caller's event costs no CPU, unlike polling it.
    threading.Thread(
        target=lambda: (stop_event.wait(), loop.call_soon_threadsafe(stop.set)),
        name="lunaris-stop-watch",
        daemon=True,
    ).start()
    return await _with_agent(config_path, lambda agent: agent.run(stop))


async def _once(config_path: Path) -> int:
    return await _with_agent(config_path, lambda agent: agent.once())


async def _with_agent(config_path: Path, work: Callable[[Agent], Awaitable[ExitCode]]) -> int:
    try:
        config = prepare(config_path)
    except ConfigError as error:
        log.error("%s", error)
        return ExitCode.CONFIG
    log.info("agent starting: device %s, server %s", config.device_id, config.api_url)
    async with AgentClient(config.api_url, verify=config.tls_verify) as client:
        agent = Agent(
            config,
            client,
            scanner=winget_scanner(config.winget_path),
            install=winget_installer(config.winget_path),
        )
        try:
            code = await work(agent)
        except AgentStopped as error:
            log.error("%s", error)
            return error.code
    log.info("agent stopped")
    return code

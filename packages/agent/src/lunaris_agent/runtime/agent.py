"""One device's conversation with the server: :class:`Agent`, its steps and its loops.

Platform-neutral: what scans, what lists the software and what installs are handed in (winget
on a PC, a simulated inventory in the simulator), and so are the client and the spool.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final
from uuid import UUID

from lunaris_agent import config as config_file
from lunaris_agent.client import AgentApiError, AgentClient, RequestRefused, ServerUnavailable
from lunaris_agent.commands import CommandRunner, Installer, UserInstalls
from lunaris_agent.config import AgentConfig
from lunaris_agent.identity import DeviceFacts, local_time_zone, read_device_facts
from lunaris_agent.ledger import LEDGER_FILE, PROGRESS_KIND, CommandLedger, progress_from_payload
from lunaris_agent.push import PushChannel
from lunaris_agent.runtime.contact import ContactRecorder
from lunaris_agent.runtime.exits import ExitCode
from lunaris_agent.runtime.inventory import Inventory, InventoryReporter
from lunaris_agent.runtime.registration import Registration
from lunaris_agent.selfupdate import SelfUpdater, SelfUpdateSettings
from lunaris_agent.spool import Spool, SpooledResult
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_protocol import (
    HeartbeatRequest,
    HeartbeatResponse,
    InventoryReport,
    NewIdentity,
    UpdateReport,
)
from lunaris_protocol.backoff import Backoff

log = logging.getLogger(__name__)

Scanner = Callable[[], Awaitable[UpdateReport]]
"""Produces the current update report: winget on a PC, an inventory in the simulator."""

JITTER: Final = 0.1
"""Intervals vary by ±10% so a fleet started together does not pulse."""


async def _no_installs(package: str, version: str | None) -> InstallOutcome:
    return InstallOutcome.not_run(package, "this agent does not run installs")


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
        inventory: Inventory | None = None,
        inventory_interval_s: float | None = None,
        self_update: SelfUpdateSettings | None = None,
        user_installs: UserInstalls | None = None,
    ) -> None:
        """``install`` runs remote actions' package installs (winget on a PC); without it the
        agent refuses commands. ``inventory`` lists everything installed (``winget list``);
        without it the agent sends no software inventory. ``heartbeat_interval_s``,
        ``scan_interval_s`` and ``inventory_interval_s`` override what the server asks for:
        the simulator's compressed time. ``record_contact`` keeps state.json for `status`.
        ``push`` opens the socket on which commands arrive at once (they also ride on
        heartbeat answers). ``self_update`` lets UPDATE_AGENT commands replace the agent;
        ``user_installs`` installs into users' profiles (``per_user``)."""
        if config.device_id is None:
            raise ValueError("the config has no device id yet: use config.with_device_id")
        self.config = config
        self._client = client
        self._scanner = scanner
        self._facts = facts or read_device_facts()
        self._spool = spool or Spool(config.spool_dir)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._heartbeat_override = heartbeat_interval_s
        self._scan_override = scan_interval_s
        self._inventory_override = inventory_interval_s
        self._sending = asyncio.Lock()
        self._listing = asyncio.Lock()  # held while winget lists: one listing at a time
        self._heartbeat_backoff = Backoff(self._heartbeat_every, self._rng)
        self._contact = ContactRecorder(config.state_path, self._spool, enabled=record_contact)
        self._registration = Registration(
            client,
            self._facts,
            self._contact,
            config=lambda: self.config,
            save_config=self._save_config,
            capabilities=lambda: self.commands.capabilities,
        )
        self.inventory: InventoryReporter | None = None
        if inventory is not None:
            self.inventory = InventoryReporter(
                inventory,
                spool=self._spool,
                post=lambda body: self._registration.authorized(
                    lambda token: self._client.inventory(token, body)
                ),
                listing=self._listing,
                every=lambda: self._inventory_override or self.config.inventory_interval_s,
                jittered=self._jittered,
                spooled=self._contact.check_spool,
            )
        self.commands = CommandRunner(
            ledger=CommandLedger(config.directory / LEDGER_FILE),
            spool=self._spool,
            install=install or _no_installs,
            list_updates=scanner,
            send=self._send_best_effort,
            after_command=self._rescan,
            self_update=SelfUpdater(self_update, lambda: self.config),
            user_installs=user_installs,
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

    @property
    def device_id(self) -> UUID:
        assert self.config.device_id is not None  # checked in __init__
        return self.config.device_id

    # -- one step each -----------------------------------------------------------------------

    async def heartbeat(self) -> HeartbeatResponse:
        # Off the loop: a re-read asks the resolver, which can stall where DNS is broken.
        facts = await asyncio.to_thread(self._facts.wire)
        request = HeartbeatRequest(
            hostname=self._facts.hostname,
            os_version=self._facts.os_version,
            agent_version=self._facts.agent_version,
            capabilities=self.commands.capabilities,
            time_zone=local_time_zone(),
            booted_at=self._facts.booted_at,
            **facts,
        )
        response = await self._registration.authorized(
            lambda token: self._client.heartbeat(token, request)
        )
        self._remember_intervals(response)
        if response.new_identity is not None:
            await self._take_identity(response.new_identity)
        for command in response.commands:
            self.commands.offer(command)
        return response

    async def scan(self) -> UpdateReport:
        """Scans and spools the result; sending is :meth:`send_spooled`'s job."""
        async with self._listing:
            report = await self._scanner()
        self._spool.put_report(report)
        self._contact.check_spool()
        return report

    async def take_inventory(self) -> InventoryReport | None:
        """Lists the software and spools it (None without an inventory); sending is
        :meth:`send_spooled`'s job."""
        return None if self.inventory is None else await self.inventory.take()

    async def send_spooled(self) -> None:
        """Sends what the spool holds: command progress first, in order, then the update
        snapshot, then the software inventory. Raises :class:`ServerUnavailable` (the rest
        stays in the spool) or :class:`AgentStopped`; a message the server refuses is
        dropped, since sending it again cannot help."""
        async with self._sending:
            await self._send_results()
            await self._send_report()
            if self.inventory is not None:
                await self.inventory.send_pending()

    async def _send_report(self) -> None:
        """The update snapshot; the caller holds the sending lock."""
        report = self._spool.pending_report()
        if report is None:
            return
        # The config's tags as they are now, also on a report an older version spooled;
        # the spool keeps what winget said, nothing else.
        tagged = report.model_copy(update={"tags": list(self.config.tags)})
        try:
            outcome = await self._registration.authorized(
                lambda token: self._client.report(token, tagged)
            )
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
            await self._send_results()
        log.warning(
            "this PC shared device %s with another (a cloned disk): it is now device %s",
            self.device_id,
            identity.device_id,
        )
        self._save_config(
            replace(self.config, device_id=identity.device_id, device_token=identity.device_token)
        )
        if self.inventory is not None:
            self.inventory.forget_accepted()  # the new device has no inventory yet
        if self.push is not None:
            await self.push.reconnect()
        await self._rescan()  # the new device's updates and software, now: it has none listed

    async def _send_results(self) -> None:
        """Command progress, oldest first; the caller holds the sending lock."""
        for spooled in self._spool.pending_results():
            await self._send_result(spooled)

    async def _send_result(self, spooled: SpooledResult) -> None:
        if spooled.kind != PROGRESS_KIND:
            log.error("unknown spooled message %r dropped", spooled.kind)
            self._spool.result_sent(spooled)
            return
        command_id, progress = progress_from_payload(spooled.payload)
        try:
            await self._registration.authorized(
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
        """After a remote action: the console should see what is left to update and what is
        installed now at once."""
        await self.scan()
        await self.take_inventory()
        await self._send_best_effort()

    # -- whole runs ----------------------------------------------------------------------------

    async def once(self) -> ExitCode:
        """Heartbeat, send what was spooled, run the commands the heartbeat handed over, scan
        and list the software, report. Scans even when the server is down, so the report and
        the inventory wait in the spool for the next run."""
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
        await self.take_inventory()
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
        if self.inventory is not None:
            # After the scan loop's task: the first scan takes winget first.
            inventory = self.inventory.run_forever(self._send_best_effort)
            loops.append(asyncio.create_task(inventory, name="inventory"))
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

    def _jittered(self, seconds: float) -> float:
        return seconds * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def _note_success(self) -> None:
        if self._heartbeat_backoff.failures:
            log.info(
                "server reachable again after %d failed attempts", self._heartbeat_backoff.failures
            )
        self._heartbeat_backoff.reset()
        self._contact.reached()

    def _note_failure(self, error: AgentApiError, delay: float) -> None:
        # Loud once, then quiet: an outage must not fill the log with the same line.
        level = logging.WARNING if self._heartbeat_backoff.failures == 1 else logging.DEBUG
        log.log(level, "server unavailable (%s); retrying in %.0f s", error, delay)
        self._contact.failed(str(error))

    # -- the config ------------------------------------------------------------------------------

    def _remember_intervals(self, answer: HeartbeatResponse) -> None:
        asked = replace(
            self.config,
            heartbeat_interval_s=answer.heartbeat_interval_s,
            scan_interval_s=answer.scan_interval_s,
            inventory_interval_s=answer.inventory_interval_s,
        )
        if asked != self.config:
            log.info(
                "server asks for heartbeats, scans and inventories every %d, %d and %d s",
                *(asked.heartbeat_interval_s, asked.scan_interval_s, asked.inventory_interval_s),
            )
            self._save_config(asked)
            self._heartbeat_backoff.cap_s = self._heartbeat_every

    def _save_config(self, updated: AgentConfig) -> None:
        config_file.save(updated)
        self.config = updated

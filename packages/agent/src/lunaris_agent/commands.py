"""Remote actions on the PC: RUN_UPDATES and UPDATE_AGENT commands, each run once, one at a
time.

A command may arrive twice (over the socket and again in a heartbeat, or re-sent after a
lost answer): the ledger (:mod:`lunaris_agent.ledger`) remembers every command id it has
accepted, so a duplicate is ignored, also after a restart. Each step goes to the spool first
and is numbered, so the server gets every step in order even across an outage.

A command the agent was running when it stopped (a crash, a reboot by an installer) is not
resumed, since which packages already ran is unknown: it is reported as failed, with that
reason, at the next start. An UPDATE_AGENT whose installer stopped the agent is the exception:
the agent that starts next finishes it (:mod:`lunaris_agent.selfupdate`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lunaris_agent.ledger import (
    LEDGER_FILE,
    PROGRESS_KIND,
    CommandLedger,
    Steps,
    progress_from_payload,
    progress_payload,
)
from lunaris_agent.selfupdate import SelfUpdater
from lunaris_agent.spool import Spool
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_agent.winget.text import clean_message
from lunaris_protocol import (
    AgentCommand,
    Capability,
    PackageResult,
    RunUpdatesCommand,
    UpdateAgentCommand,
    UpdateReport,
)
from lunaris_protocol.limits import MAX_MESSAGE, MAX_OUTCOME
from lunaris_protocol.packages import is_targetable_id
from lunaris_protocol.text import invisible_character

__all__ = [
    "AGENT_CAPABILITIES",
    "LEDGER_FILE",
    "PROGRESS_KIND",
    "CommandLedger",
    "CommandRunner",
    "Installer",
    "Lister",
    "UserInstalls",
    "progress_from_payload",
    "progress_payload",
]

log = logging.getLogger(__name__)

Installer = Callable[[str, str | None], Awaitable[InstallOutcome]]
"""Installs one package (``winget upgrade --id``; exactly the version given, if one is) and
says what happened."""

AGENT_CAPABILITIES: Final = [
    Capability.EXACT_VERSIONS.value,  # CommandRunner installs RunUpdatesCommand.versions
    Capability.WINDOW_END.value,  # and starts no install after window_ends_at
]
"""What this agent tells the server it understands (registration and every heartbeat)."""
Lister = Callable[[], Awaitable[UpdateReport]]
"""What can be upgraded now: for a command that asks for every available update."""


@dataclass(frozen=True, slots=True)
class UserInstalls:
    """Installs into users' profiles (:class:`lunaris_agent.per_user.UserScans`): an agent
    that has them installs a package where its last scan found it, and says ``per_user``."""

    locate: Callable[[str], Sequence[str | None]]
    """Where the last scan found a package: None for the machine, then users' accounts;
    empty when it did not find it (installed for the machine, as without user installs)."""
    install: Callable[[str, str | None, str], Awaitable[InstallOutcome]]
    """Installs one package (exactly the version given, if one is) for one account."""


class CommandRunner:
    def __init__(
        self,
        *,
        ledger: CommandLedger,
        spool: Spool,
        install: Installer,
        list_updates: Lister,
        send: Callable[[], Awaitable[None]],
        after_command: Callable[[], Awaitable[None]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        self_update: SelfUpdater | None = None,
        user_installs: UserInstalls | None = None,
    ) -> None:
        """``send`` flushes the spool (best effort: it must not raise for an unreachable
        server); ``after_command`` rescans and reports, so the console sees the new state.
        ``self_update`` takes UPDATE_AGENT commands (when it is available) and finishes the
        one an earlier agent started. ``user_installs`` installs into users' profiles."""
        self._ledger = ledger
        self._steps = Steps(ledger, spool)
        self._self_update = self_update
        self._install = install
        self._user_installs = user_installs
        self._list_updates = list_updates
        self._send = send
        self._after_command = after_command
        self._clock = clock
        self._queue: asyncio.Queue[AgentCommand] = asyncio.Queue()

    @property
    def capabilities(self) -> list[str]:
        """What this agent tells the server it understands (registration and heartbeats)."""
        capabilities = list(AGENT_CAPABILITIES)
        if self._self_update is not None and self._self_update.available:
            capabilities.append(Capability.SELF_UPDATE.value)
        if self._user_installs is not None:
            capabilities.append(Capability.PER_USER.value)
        return capabilities

    def offer(self, command: AgentCommand) -> bool:
        """Queues a command unless it was seen before; True when it is new."""
        updates_agent = isinstance(command, UpdateAgentCommand)
        if updates_agent and Capability.SELF_UPDATE.value not in self.capabilities:
            log.warning("command %s: this agent does not take %s", command.command_id, command.kind)
            return False
        if self._ledger.knows(command.command_id):
            log.debug("command %s already accepted: ignored", command.command_id)
            return False
        self._ledger.accept(command.command_id)
        self._queue.put_nowait(command)
        log.info("command %s accepted: %s", command.command_id, _describe(command))
        return True

    def report_interrupted(self) -> None:
        """At start: the commands accepted before the agent stopped and never finished; an
        agent update the installer stopped is finished first, with this agent's version."""
        if self._self_update is not None:
            self._self_update.finish_pending(self._steps)
        for command_id in self._ledger.unfinished():
            self._steps.step(
                command_id,
                "failed",
                message="the agent stopped before this command finished (a restart or a "
                "reboot); run it again to install what is left",
            )
            self._ledger.finish(command_id)

    async def run_forever(self) -> None:
        while True:
            await self.execute(await self._queue.get())

    async def run_queued(self) -> int:
        """Runs what is queued now; returns how many commands ran."""
        count = 0
        while not self._queue.empty():
            await self.execute(self._queue.get_nowait())
            count += 1
        return count

    async def execute(self, command: AgentCommand) -> None:
        if isinstance(command, UpdateAgentCommand):
            assert self._self_update is not None  # offered only then
            await self._self_update.execute(command, self._steps, self._send)
        else:
            await self._run_updates(command)

    async def _run_updates(self, command: RunUpdatesCommand) -> None:
        command_id = command.command_id
        if self._clock() >= command.expires_at:
            self._steps.finish(
                command_id, "failed", message="expired before the agent could start it"
            )
            await self._send()
            return
        packages = await self._packages(command)
        if packages is None:
            self._steps.finish(command_id, "failed", message="winget could not list the updates")
            await self._send()
            return
        # An id a step cannot carry (a control or format character in it) is not installed:
        # a result for it could never be reported. The command's last step names it, escaped.
        unsendable = [package for package in packages if invisible_character(package)]
        packages = [package for package in packages if package not in unsendable]
        versions = command.versions or {}
        results = [
            await self._install_one(command, package, versions.get(package), account)
            for package in packages
            for account in self._where(package)
        ]
        succeeded = not unsendable and all(result.succeeded for result in results)
        self._steps.finish(
            command_id,
            "succeeded" if succeeded else "failed",
            message=_not_installed(unsendable),
        )
        log.info(
            "command %s %s: %d of %d packages updated",
            command_id,
            "succeeded" if succeeded else "failed",
            sum(result.succeeded for result in results),
            len(results),
        )
        await self._send()
        await self._after_command()

    def _where(self, package: str) -> Sequence[str | None]:
        """Where to install ``package``: the machine (None) and users' accounts, machine first."""
        where = () if self._user_installs is None else self._user_installs.locate(package)
        return where or (None,)

    async def _install_one(
        self, command: RunUpdatesCommand, package: str, version: str | None, account: str | None
    ) -> PackageResult:
        """Installs one package for the machine (``account`` None) or into a user's profile,
        and reports it as a step."""
        command_id = command.command_id
        if command.window_ends_at is not None and self._clock() >= command.window_ends_at:
            # A policy's window closed while earlier packages installed: none starts late.
            result = _package_result(package, _window_closed(package, command), 0.0, account)
            self._steps.step(command_id, "running", result=result)
            return result
        self._steps.step(command_id, "running", package_started=package)
        await self._send()
        started = time.monotonic()
        try:
            if account is None:
                outcome = await self._install(package, version)
            else:
                assert self._user_installs is not None  # users are located only with it
                outcome = await self._user_installs.install(package, version, account)
        except Exception as error:  # one package that cannot be run fails, not the loop
            log.exception("installing %r failed to start", package)
            outcome = InstallOutcome.not_run(package, f"could not start: {error}")
        result = _package_result(package, outcome, time.monotonic() - started, account)
        self._steps.step(command_id, "running", result=result)
        await self._send()
        return result

    async def _packages(self, command: RunUpdatesCommand) -> list[str] | None:
        if command.packages is not None:
            return list(dict.fromkeys(command.packages))  # each once, in the order asked
        report = await self._list_updates()
        if report.scan_error is not None:
            return None
        # A truncated id cannot be given to winget; it shows in the console as such.
        ids = (item.package_identifier for item in report.updates)
        return list(dict.fromkeys(identifier for identifier in ids if is_targetable_id(identifier)))


def _package_result(
    package: str, outcome: InstallOutcome, duration_s: float, account: str | None = None
) -> PackageResult:
    """One package's result; one installed into a user's profile says whose first."""
    message = outcome.message or ""
    if account is not None:
        message = f"for {account} (user scope): {message}"
    return PackageResult(
        package_identifier=package,
        outcome=outcome.install_outcome,
        succeeded=outcome.succeeded,
        reboot_required=outcome.install_outcome == "success_reboot_required",
        installer_exit_code=outcome.installer_exit_code,
        hresult=None if outcome.hresult is None else clean_message(outcome.hresult)[:MAX_OUTCOME],
        message=clean_message(message)[:MAX_MESSAGE],
        duration_s=round(duration_s, 3),
    )


def _window_closed(package: str, command: RunUpdatesCommand) -> InstallOutcome:
    assert command.window_ends_at is not None
    closed = command.window_ends_at.isoformat(timespec="minutes")
    message = f"not started: the maintenance window closed at {closed}"
    return InstallOutcome.not_run(package, message, outcome="window_closed")


def _not_installed(unsendable: list[str]) -> str:
    if not unsendable:
        return ""
    named = ", ".join(ascii(package) for package in unsendable)
    return f"not installed, the id holds invisible characters: {named}"


def _describe(command: AgentCommand) -> str:
    if isinstance(command, UpdateAgentCommand):
        return f"update this agent to {command.version}"
    if command.packages is None:
        return "every available update"
    versions = command.versions or {}
    named = [
        f"{package} {versions[package]}" if package in versions else package
        for package in command.packages[:5]
    ]
    return ", ".join(named) + (" ..." if len(command.packages) > 5 else "")

"""Remote actions on the PC: RUN_UPDATES commands, each run once, one at a time.

A command may arrive twice (over the socket and again in a heartbeat, or re-sent after a
lost answer): the ledger (``commands.json`` beside the config) remembers every command id it
has accepted, so a duplicate is ignored, also after a restart. Each step (a package starting,
a package's result, the end) goes to the spool first and is numbered, so the server gets every
step in order even across an outage, and can ignore a step it already has.

A command the agent was running when it stopped (a crash, a reboot by an installer) is not
resumed, since which packages already ran is unknown: it is reported as failed, with that
reason, at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

from lunaris_agent.config import write_private_file
from lunaris_agent.spool import Spool
from lunaris_agent.winget.outcome import InstallOutcome
from lunaris_agent.winget.text import clean_message
from lunaris_protocol import (
    AgentCommand,
    Capability,
    CommandProgress,
    PackageResult,
    RunUpdatesCommand,
    UpdateReport,
)
from lunaris_protocol.limits import MAX_MESSAGE, MAX_OUTCOME
from lunaris_protocol.packages import is_targetable_id
from lunaris_protocol.text import invisible_character

log = logging.getLogger(__name__)

PROGRESS_KIND: Final = "command_progress"
LEDGER_FILE: Final = "commands.json"
LEDGER_SIZE: Final = 1_000
"""Command ids remembered; a duplicate arrives within hours, not after a thousand commands."""

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

StepStatus = Literal["running", "succeeded", "failed"]


@dataclass
class _Entry:
    state: Literal["accepted", "finished"]
    last_step: int
    at: str


class CommandLedger:
    """Which commands this PC has accepted, and the last step reported for each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = self._load()

    def knows(self, command_id: UUID) -> bool:
        return str(command_id) in self._entries

    def accept(self, command_id: UUID) -> None:
        self._entries[str(command_id)] = _Entry("accepted", 0, _now())
        while len(self._entries) > LEDGER_SIZE:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._save()

    def next_step(self, command_id: UUID) -> int:
        entry = self._entries[str(command_id)]
        entry.last_step += 1
        self._save()
        return entry.last_step

    def finish(self, command_id: UUID) -> None:
        self._entries[str(command_id)].state = "finished"
        self._save()

    def unfinished(self) -> list[UUID]:
        return [UUID(key) for key, entry in self._entries.items() if entry.state == "accepted"]

    def _load(self) -> dict[str, _Entry]:
        try:
            data = json.loads(self.path.read_bytes())
            return {
                str(UUID(key)): _Entry(value["state"], int(value["last_step"]), str(value["at"]))
                for key, value in data.items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # Losing the ledger risks running a re-sent command twice; refusing to start would
            # stop reporting altogether. Say so loudly and go on.
            log.error("command ledger %s unreadable, starting afresh: %s", self.path, error)
            return {}

    def _save(self) -> None:
        data = {
            key: {"state": entry.state, "last_step": entry.last_step, "at": entry.at}
            for key, entry in self._entries.items()
        }
        write_private_file(self.path, json.dumps(data).encode())


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
    ) -> None:
        """``send`` flushes the spool (best effort: it must not raise for an unreachable
        server); ``after_command`` rescans and reports, so the console sees the new state."""
        self._ledger = ledger
        self._spool = spool
        self._install = install
        self._list_updates = list_updates
        self._send = send
        self._after_command = after_command
        self._clock = clock
        self._queue: asyncio.Queue[RunUpdatesCommand] = asyncio.Queue()

    def offer(self, command: AgentCommand) -> bool:
        """Queues a command unless it was seen before; True when it is new."""
        if not isinstance(command, RunUpdatesCommand):  # sent only to agents that take it
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
        """At start: the commands accepted before the agent stopped and never finished."""
        for command_id in self._ledger.unfinished():
            self._step(
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

    async def execute(self, command: RunUpdatesCommand) -> None:
        command_id = command.command_id
        if self._clock() >= command.expires_at:
            self._finish(command_id, "failed", message="expired before the agent could start it")
            await self._send()
            return
        packages = await self._packages(command)
        if packages is None:
            self._finish(command_id, "failed", message="winget could not list the updates")
            await self._send()
            return
        # An id a step cannot carry (a control or format character in it) is not installed:
        # a result for it could never be reported. The command's last step names it, escaped.
        unsendable = [package for package in packages if invisible_character(package)]
        packages = [package for package in packages if package not in unsendable]
        versions = command.versions or {}
        results = []
        for package in packages:
            if command.window_ends_at is not None and self._clock() >= command.window_ends_at:
                # A policy's window closed while earlier packages installed: none starts late.
                result = _package_result(package, _window_closed(package, command), 0.0)
                results.append(result)
                self._step(command_id, "running", result=result)
                continue
            self._step(command_id, "running", package_started=package)
            await self._send()
            started = time.monotonic()
            try:
                outcome = await self._install(package, versions.get(package))
            except Exception as error:  # one package that cannot be run fails, not the loop
                log.exception("installing %r failed to start", package)
                outcome = InstallOutcome.not_run(package, f"could not start: {error}")
            result = _package_result(package, outcome, time.monotonic() - started)
            results.append(result)
            self._step(command_id, "running", result=result)
            await self._send()
        succeeded = not unsendable and all(result.succeeded for result in results)
        self._finish(
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

    async def _packages(self, command: RunUpdatesCommand) -> list[str] | None:
        if command.packages is not None:
            return list(dict.fromkeys(command.packages))  # each once, in the order asked
        report = await self._list_updates()
        if report.scan_error is not None:
            return None
        # A truncated id cannot be given to winget; it shows in the console as such.
        ids = (item.package_identifier for item in report.updates)
        return list(dict.fromkeys(identifier for identifier in ids if is_targetable_id(identifier)))

    def _finish(self, command_id: UUID, status: StepStatus, *, message: str = "") -> None:
        self._step(command_id, status, message=message)
        self._ledger.finish(command_id)

    def _step(
        self,
        command_id: UUID,
        status: StepStatus,
        *,
        package_started: str | None = None,
        result: PackageResult | None = None,
        message: str = "",
    ) -> None:
        progress = CommandProgress(
            sequence=self._ledger.next_step(command_id),
            status=status,
            package_started=package_started,
            result=result,
            message=clean_message(message)[:MAX_MESSAGE],
        )
        self._spool.append_result(PROGRESS_KIND, progress_payload(command_id, progress))


def progress_payload(command_id: UUID, progress: CommandProgress) -> dict[str, Any]:
    return {"command_id": str(command_id), "progress": progress.model_dump(mode="json")}


def progress_from_payload(payload: dict[str, Any]) -> tuple[UUID, CommandProgress]:
    return UUID(payload["command_id"]), CommandProgress.model_validate(payload["progress"])


def _package_result(package: str, outcome: InstallOutcome, duration_s: float) -> PackageResult:
    return PackageResult(
        package_identifier=package,
        outcome=outcome.install_outcome,
        succeeded=outcome.succeeded,
        reboot_required=outcome.install_outcome == "success_reboot_required",
        installer_exit_code=outcome.installer_exit_code,
        hresult=None if outcome.hresult is None else clean_message(outcome.hresult)[:MAX_OUTCOME],
        message=clean_message(outcome.message or "")[:MAX_MESSAGE],
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


def _describe(command: RunUpdatesCommand) -> str:
    if command.packages is None:
        return "every available update"
    versions = command.versions or {}
    named = [
        f"{package} {versions[package]}" if package in versions else package
        for package in command.packages[:5]
    ]
    return ", ".join(named) + (" ..." if len(command.packages) > 5 else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Which commands this PC has accepted, and how each one's steps reach the server.

The ledger (``commands.json`` beside the config) remembers every command id accepted, so a
duplicate is ignored, also after a restart, and the last step number reported for each. Every
step (a package starting, a package's result, the end) goes to the spool first and is
numbered, so the server gets each one in order even across an outage, and can ignore a step
it already has. RUN_UPDATES and UPDATE_AGENT report through the same :class:`Steps`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

from lunaris_agent.config import write_private_file
from lunaris_agent.spool import Spool
from lunaris_agent.winget.text import clean_message
from lunaris_protocol import CommandProgress, PackageResult
from lunaris_protocol.limits import MAX_MESSAGE

log = logging.getLogger(__name__)

PROGRESS_KIND: Final = "command_progress"
LEDGER_FILE: Final = "commands.json"
LEDGER_SIZE: Final = 1_000
"""Command ids remembered; a duplicate arrives within hours, not after a thousand commands."""

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

    def last_step(self, command_id: UUID) -> int:
        entry = self._entries.get(str(command_id))
        return 0 if entry is None else entry.last_step

    def is_finished(self, command_id: UUID) -> bool:
        entry = self._entries.get(str(command_id))
        return entry is not None and entry.state == "finished"

    def resume(self, command_id: UUID, last_step: int) -> None:
        """Takes up a command whose steps went on elsewhere (the agent before an upgrade):
        its next step comes after ``last_step``, also when this ledger lost it."""
        entry = self._entries.setdefault(str(command_id), _Entry("accepted", 0, _now()))
        entry.last_step = max(entry.last_step, last_step)
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


class Steps:
    """Writes commands' steps to the spool, numbered by the ledger."""

    def __init__(self, ledger: CommandLedger, spool: Spool) -> None:
        self.ledger = ledger
        self._spool = spool

    def step(
        self,
        command_id: UUID,
        status: StepStatus,
        *,
        package_started: str | None = None,
        result: PackageResult | None = None,
        message: str = "",
    ) -> None:
        progress = CommandProgress(
            sequence=self.ledger.next_step(command_id),
            status=status,
            package_started=package_started,
            result=result,
            message=clean_message(message)[:MAX_MESSAGE],
        )
        self._spool.append_result(PROGRESS_KIND, progress_payload(command_id, progress))

    def finish(self, command_id: UUID, status: StepStatus, *, message: str = "") -> None:
        """The command's last step: it is done, whatever comes later."""
        self.step(command_id, status, message=message)
        self.ledger.finish(command_id)


def progress_payload(command_id: UUID, progress: CommandProgress) -> dict[str, Any]:
    return {"command_id": str(command_id), "progress": progress.model_dump(mode="json")}


def progress_from_payload(payload: dict[str, Any]) -> tuple[UUID, CommandProgress]:
    return UUID(payload["command_id"]), CommandProgress.model_validate(payload["progress"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

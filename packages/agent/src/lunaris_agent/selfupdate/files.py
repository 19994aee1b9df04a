"""The files of one self-update in the agent's data directory, and the marker that carries a
command across the upgrade.

``updates/lunaris-agent-<version>.msi.part`` while downloading, renamed to ``.msi`` once its
size and SHA-256 match; ``updates/lunaris-agent-<version>-install.log`` (msiexec's log, kept
after the update, the last one only); ``self-update.json`` beside the config while the
installer runs: the command, the target version, the log and the last step reported, so the
agent that starts next finishes the command instead of calling it interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from lunaris_agent.config import write_private_file

log = logging.getLogger(__name__)

UPDATES_DIR: Final = "updates"
MARKER_FILE: Final = "self-update.json"


class UpdateRefused(Exception):
    """The update cannot go on: ``outcome`` is the agent package's result code."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass(frozen=True)
class UpdateFiles:
    directory: Path
    """The agent's data directory (``config.json``'s)."""
    version: str

    @property
    def updates(self) -> Path:
        return self.directory / UPDATES_DIR

    @property
    def part(self) -> Path:
        return self.updates / f"lunaris-agent-{self.version}.msi.part"

    @property
    def msi(self) -> Path:
        return self.updates / f"lunaris-agent-{self.version}.msi"

    @property
    def log(self) -> Path:
        return self.updates / f"lunaris-agent-{self.version}-install.log"

    @property
    def marker(self) -> Path:
        return self.directory / MARKER_FILE

    def discard_download(self) -> None:
        for path in (self.part, self.msi):
            _remove(path)

    def clean_up(self) -> None:
        """After the command's end: the marker and every installer go, the last log stays."""
        _remove(self.marker)
        with contextlib.suppress(OSError):
            for path in self.updates.iterdir():
                if path != self.log:
                    _remove(path)


@dataclass(frozen=True)
class Marker:
    """``self-update.json``: an installer was started for this command."""

    command_id: UUID
    version: str
    log: Path
    started_at: datetime
    last_step: int
    """The command's last step reported before the installer started."""

    def save(self, path: Path) -> None:
        data = {
            "command_id": str(self.command_id),
            "version": self.version,
            "log": str(self.log),
            "started_at": self.started_at.isoformat(),
            "last_step": self.last_step,
        }
        write_private_file(path, json.dumps(data).encode())

    @classmethod
    def load(cls, path: Path) -> Marker | None:
        try:
            data = json.loads(path.read_bytes())
            return cls(
                command_id=UUID(data["command_id"]),
                version=str(data["version"]),
                log=Path(data["log"]),
                started_at=datetime.fromisoformat(data["started_at"]),
                last_step=int(data["last_step"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            # The command is then reported as interrupted, which is what is known of it.
            log.error("self-update marker %s unreadable, removed: %s", path, error)
            _remove(path)
            return None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("cannot remove %s: %s", path, error.strerror or error)

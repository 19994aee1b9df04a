"""The agent's contact with the server as ``lunaris-agent status`` shows it: the last contact,
the last error and the spool's health, kept in ``state.json`` as the runtime goes."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from lunaris_agent.spool import Spool
from lunaris_agent.status import ContactState


class ContactRecorder:
    """Writes ``state.json``; never stops the agent for it (the file is for display only).
    With ``enabled`` false (the simulator's devices) it writes nothing."""

    def __init__(self, path: Path, spool: Spool, *, enabled: bool = True) -> None:
        self._path = path
        self._spool = spool
        self._enabled = enabled

    def reached(self) -> None:
        """The server answered: the last contact is now, and the last error is cleared."""
        self._save(ContactState(last_contact_at=datetime.now(UTC)))

    def failed(self, why: str) -> None:
        """The server could not be reached, or the agent stopped: ``why`` is the last error."""
        if self._enabled:
            self._save(replace(ContactState.load(self._path), last_error=why))

    def check_spool(self) -> None:
        """A spool failure (or its end) goes to state.json at once."""
        if self._enabled:
            saved = ContactState.load(self._path)
            if saved.spool_error != self._spool.write_error:
                self._save(saved)

    def _save(self, state: ContactState) -> None:
        if self._enabled:
            state = replace(state, spool_error=self._spool.write_error)
            with contextlib.suppress(OSError):
                state.save(self._path)

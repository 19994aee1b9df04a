"""What the agent has not been able to send yet, kept on disk across restarts.

Two kinds of message, with different rules:

- Snapshots: every scan replaces the whole list, so only the newest unsent one matters: the
  update report (``report.json``) and the software inventory (``inventory.json``), each
  overwritten by the next.
- Results (remote-action progress): each one is news the server must get, in order, so they
  are numbered files sent oldest first. The queue is bounded; past the bound the oldest are
  dropped with a warning, because a PC that has been offline for months must not fill its disk.

Every file is written atomically, so a crash or power cut leaves the old file or the new one,
never half of one; a file that is unreadable anyway (disk error, hand edit) is set aside as
``*.bad`` and logged, never allowed to block the queue.

A spool that cannot be written (a full disk, a folder that is not one) must not stop the agent
or lose what it has to send: what cannot go to disk waits in memory, in the same order, until
it is sent or the disk takes it again. The failure is logged once, with the path and the cause,
and kept in :attr:`Spool.write_error` for ``lunaris-agent status``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from lunaris_agent.config import write_private_file
from lunaris_protocol import InventoryReport, UpdateReport

log = logging.getLogger(__name__)

REPORT_FILE: Final = "report.json"
INVENTORY_FILE: Final = "inventory.json"
RESULTS_DIR: Final = "results"
MAX_RESULTS: Final = 10_000
MAX_RESULT_BYTES: Final = 64 * 1024
_RESULT_NAME: Final = re.compile(r"^(\d{12})\.json$")

SnapshotT = TypeVar("SnapshotT", bound=BaseModel)


@dataclass(frozen=True)
class SpooledResult:
    sequence: int
    kind: str
    payload: dict[str, Any]


class Spool:
    def __init__(self, directory: Path, *, max_results: int = MAX_RESULTS) -> None:
        self.directory = directory
        self._results = directory / RESULTS_DIR
        self._max_results = max_results
        self.write_error: str | None = None
        """Why the spool could not be written, until a write succeeds again."""
        self._report = _Snapshot(self, REPORT_FILE, UpdateReport, "report")
        self._inventory = _Snapshot(self, INVENTORY_FILE, InventoryReport, "inventory")
        self._results_in_memory: list[SpooledResult] = []
        self._sent_sequences: set[int] = set()
        """Results already sent whose files could not be removed."""
        self._said: set[str] = set()
        self._last_sequence = 0
        """The highest result number given out, in case the disk cannot be listed."""

    # -- the newest update snapshot --------------------------------------------------------

    def put_report(self, report: UpdateReport) -> None:
        self._report.put(report)

    def pending_report(self) -> UpdateReport | None:
        return self._report.pending()

    def report_sent(self, report: UpdateReport) -> None:
        """Forgets the spooled snapshot if it is still ``report``: a newer scan stays."""
        self._report.sent(report)

    # -- the newest software inventory -------------------------------------------------------

    def put_inventory(self, inventory: InventoryReport) -> None:
        """Replaces the unsent inventory: only what is installed now matters."""
        self._inventory.put(inventory)

    def pending_inventory(self) -> InventoryReport | None:
        return self._inventory.pending()

    def inventory_sent(self, inventory: InventoryReport) -> None:
        """Forgets the spooled inventory if it is still ``inventory``: a newer one stays."""
        self._inventory.sent(inventory)

    # -- results, in order -----------------------------------------------------------------

    def append_result(self, kind: str, payload: dict[str, Any]) -> SpooledResult:
        content = json.dumps({"kind": kind, "payload": payload}, ensure_ascii=False).encode()
        if len(content) > MAX_RESULT_BYTES:
            raise ValueError(f"a {kind} result of {len(content)} bytes is too large to keep")
        sequences = self._sequences()
        self._last_sequence = max([self._last_sequence, *sequences]) + 1
        result = SpooledResult(self._last_sequence, kind, payload)
        # Once results wait in memory, later ones queue behind them there, to keep the order.
        self._results_in_memory.append(result)
        self._move_results_to_disk()
        self._drop_beyond_bound()
        return result

    def pending_results(self) -> list[SpooledResult]:
        """Every unsent result, oldest first."""
        self._move_results_to_disk()
        results = []
        for sequence in self._sequences():
            if sequence in self._sent_sequences:
                continue
            path = self._result_path(sequence)
            try:
                data = json.loads(path.read_bytes())
                results.append(SpooledResult(sequence, str(data["kind"]), dict(data["payload"])))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as error:
                self._set_aside(path, error)
        return results + self._results_in_memory

    def result_sent(self, result: SpooledResult) -> None:
        if result in self._results_in_memory:
            self._results_in_memory.remove(result)
            return
        path = self._result_path(result.sequence)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            self._sent_sequences.add(result.sequence)  # never sent twice
            self._say(f"cannot remove the sent result {path}: {_cause(error)}")

    # -- for `lunaris-agent status` ------------------------------------------------------------

    def size_bytes(self) -> int:
        try:
            files = [path for path in self.directory.rglob("*") if path.is_file()]
            return sum(path.stat().st_size for path in files)
        except OSError:
            return 0  # missing or unreadable: `status` shows the error the agent logged

    def count(self) -> int:
        snapshots = 0
        for name in (REPORT_FILE, INVENTORY_FILE):
            with contextlib.suppress(OSError):
                snapshots += (self.directory / name).exists()
        return snapshots + len(self._sequences())

    def _sequences(self) -> list[int]:
        try:
            names = [path.name for path in self._results.iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            self._say(f"cannot list the spooled results in {self._results}: {_cause(error)}")
            return []
        matches = (_RESULT_NAME.match(name) for name in names)
        return sorted(int(match.group(1)) for match in matches if match)

    def _drop_beyond_bound(self) -> None:
        on_disk = self._sequences()
        overflow = len(on_disk) + len(self._results_in_memory) - self._max_results
        for old in on_disk[: max(overflow, 0)]:
            log.warning("spool is full (%d results): dropping result %d", self._max_results, old)
            with contextlib.suppress(OSError):
                self._result_path(old).unlink(missing_ok=True)
        for _ in range(overflow - len(on_disk)):
            dropped = self._results_in_memory.pop(0)
            log.warning(
                "spool is full (%d results): dropping result %d",
                self._max_results,
                dropped.sequence,
            )

    def _move_results_to_disk(self) -> None:
        """Writes the results waiting in memory to disk, oldest first, while it takes them."""
        while self._results_in_memory:
            result = self._results_in_memory[0]
            path = self._result_path(result.sequence)
            content = json.dumps(
                {"kind": result.kind, "payload": result.payload}, ensure_ascii=False
            )
            try:
                write_private_file(path, content.encode())
            except OSError as error:
                self._write_failed(path, error, "results wait in memory until they are sent")
                return
            self._results_in_memory.pop(0)
            self._write_succeeded()

    def _write_failed(self, path: Path, error: OSError, consequence: str) -> None:
        """Loud once for a spool that cannot be written (the report's file and the
        inventory's fail together), then quiet until it can be written again."""
        failing = self.write_error is not None
        self.write_error = f"cannot write {path}: {_cause(error)}"
        problem = f"{self.write_error}; {consequence}"
        log.log(logging.DEBUG if failing or problem in self._said else logging.ERROR, "%s", problem)
        self._said.add(problem)

    def _write_succeeded(self) -> None:
        if self.write_error is not None:
            log.info("the spool in %s can be written again", self.directory)
            self.write_error = None
            self._said.clear()

    def _say(self, problem: str) -> None:
        """Logs a problem once: a broken disk must not fill the log with the same line."""
        log.log(logging.DEBUG if problem in self._said else logging.ERROR, "%s", problem)
        self._said.add(problem)

    def _set_aside(self, path: Path, error: Exception) -> None:
        self._say(f"unreadable spool file {path} set aside as .bad: {error}")
        try:
            path.replace(path.with_name(path.name + ".bad"))
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _result_path(self, sequence: int) -> Path:
        return self._results / f"{sequence:012d}.json"


class _Snapshot(Generic[SnapshotT]):
    """One file holding the newest unsent message of a kind, overwritten by the next one; in
    memory while the disk refuses it."""

    def __init__(self, spool: Spool, name: str, model: type[SnapshotT], what: str) -> None:
        self._spool = spool
        self._path = spool.directory / name
        self._model = model
        self._what = what
        self._in_memory: bytes | None = None
        self._obsolete: bytes | None = None
        """The file's content when it was sent or superseded but could not be removed."""

    def put(self, message: SnapshotT) -> None:
        content = message.model_dump_json().encode()
        try:
            write_private_file(self._path, content)
        except OSError as error:
            self._in_memory = content
            self._spool._write_failed(
                self._path, error, f"the {self._what} waits in memory until it is sent"
            )
            self._drop_file()  # an older one must not be sent after this one
            return
        self._in_memory = None
        self._obsolete = None
        self._spool._write_succeeded()

    def pending(self) -> SnapshotT | None:
        if self._in_memory is not None:
            return self._model.model_validate_json(self._in_memory)
        try:
            content = self._path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            self._spool._set_aside(self._path, error)
            return None
        if content == self._obsolete:
            return None
        try:
            return self._model.model_validate_json(content)
        except ValidationError as error:
            self._spool._set_aside(self._path, error)
            return None

    def sent(self, message: SnapshotT) -> None:
        content = message.model_dump_json().encode()
        if self._in_memory is not None:
            if self._in_memory == content:
                self._in_memory = None
            return
        try:
            on_disk = self._path.read_bytes()
        except OSError:
            return  # nothing there, or unreadable: pending() says so
        if on_disk == content or self._holds(on_disk, message):
            self._drop_file()

    def _holds(self, content: bytes, message: SnapshotT) -> bool:
        """Whether ``content`` holds ``message``, written by any version: one spooled by an
        older agent lacks the fields added since (a report's ``tags``), so its bytes differ."""
        try:
            return self._model.model_validate_json(content) == message
        except ValidationError:
            return False

    def _drop_file(self) -> None:
        """Removes the obsolete file; one that cannot be removed is never sent."""
        try:
            self._path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as error:
            with contextlib.suppress(OSError):
                self._obsolete = self._path.read_bytes()
            self._spool._say(f"cannot remove the old {self._what} {self._path}: {_cause(error)}")
            return
        self._obsolete = None


def _cause(error: OSError) -> str:
    """The operating system's words for ``error`` ("No space left on device")."""
    return error.strerror or str(error)

"""What the agent has not been able to send yet, kept on disk across restarts.

Two kinds of message, with different rules:

- The update snapshot: every scan replaces the whole list, so only the newest unsent one
  matters (``report.json``, overwritten).
- Results (remote-action progress): each one is news the server must get, in order, so they
  are numbered files sent oldest first. The queue is bounded; past the bound the oldest are
  dropped with a warning, because a PC that has been offline for months must not fill its disk.

Every file is written atomically, so a crash or power cut leaves the old file or the new one,
never half of one; a file that is unreadable anyway (disk error, hand edit) is set aside as
``*.bad`` and logged, never allowed to block the queue.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from lunaris_agent.config import write_private_file
from lunaris_protocol import UpdateReport

log = logging.getLogger(__name__)

REPORT_FILE: Final = "report.json"
RESULTS_DIR: Final = "results"
MAX_RESULTS: Final = 10_000
MAX_RESULT_BYTES: Final = 64 * 1024
_RESULT_NAME: Final = re.compile(r"^(\d{12})\.json$")


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

    # -- the newest update snapshot --------------------------------------------------------

    def put_report(self, report: UpdateReport) -> None:
        write_private_file(self.directory / REPORT_FILE, _report_bytes(report))

    def pending_report(self) -> UpdateReport | None:
        path = self.directory / REPORT_FILE
        try:
            return UpdateReport.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as error:
            _set_aside(path, error)
            return None

    def report_sent(self, report: UpdateReport) -> None:
        """Forgets the spooled snapshot if it is still ``report``: a newer scan stays."""
        path = self.directory / REPORT_FILE
        try:
            if path.read_bytes() == _report_bytes(report):
                path.unlink()
        except FileNotFoundError:
            pass

    # -- results, in order -----------------------------------------------------------------

    def append_result(self, kind: str, payload: dict[str, Any]) -> SpooledResult:
        content = json.dumps({"kind": kind, "payload": payload}, ensure_ascii=False).encode()
        if len(content) > MAX_RESULT_BYTES:
            raise ValueError(f"a {kind} result of {len(content)} bytes is too large to keep")
        sequences = self._sequences()
        sequence = (sequences[-1] + 1) if sequences else 1
        write_private_file(self._results / f"{sequence:012d}.json", content)
        overflow = len(sequences) + 1 - self._max_results
        for old in sequences[: max(overflow, 0)]:
            log.warning("spool is full (%d results): dropping result %d", self._max_results, old)
            self._result_path(old).unlink(missing_ok=True)
        return SpooledResult(sequence, kind, payload)

    def pending_results(self) -> list[SpooledResult]:
        """Every unsent result, oldest first."""
        results = []
        for sequence in self._sequences():
            path = self._result_path(sequence)
            try:
                data = json.loads(path.read_bytes())
                results.append(SpooledResult(sequence, str(data["kind"]), dict(data["payload"])))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as error:
                _set_aside(path, error)
        return results

    def result_sent(self, result: SpooledResult) -> None:
        self._result_path(result.sequence).unlink(missing_ok=True)

    # -- for `lunaris-agent status` ------------------------------------------------------------

    def size_bytes(self) -> int:
        if not self.directory.exists():
            return 0
        return sum(path.stat().st_size for path in self.directory.rglob("*") if path.is_file())

    def count(self) -> int:
        report = 1 if (self.directory / REPORT_FILE).exists() else 0
        return report + len(self._sequences())

    def _sequences(self) -> list[int]:
        if not self._results.exists():
            return []
        matches = (_RESULT_NAME.match(path.name) for path in self._results.iterdir())
        return sorted(int(match.group(1)) for match in matches if match)

    def _result_path(self, sequence: int) -> Path:
        return self._results / f"{sequence:012d}.json"


def _report_bytes(report: UpdateReport) -> bytes:
    return report.model_dump_json().encode()


def _set_aside(path: Path, error: Exception) -> None:
    log.error("unreadable spool file %s set aside as .bad: %s", path, error)
    try:
        path.replace(path.with_name(path.name + ".bad"))
    except OSError:
        path.unlink(missing_ok=True)

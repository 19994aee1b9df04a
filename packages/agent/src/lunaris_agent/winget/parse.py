"""Parser for the tables printed by ``winget upgrade`` (and ``winget list``): the updates.

Pure functions, no I/O: the agent captures winget's stdout (bytes, decoded as UTF-8) and hands
the text to :func:`parse_upgrade_output`. The tables are read by
:mod:`lunaris_agent.winget.tables` (shared with the inventory's parse); this module keeps the
rows that have an Available version. Whatever cannot be read safely is refused as
``{"code": null, "message": "unparseable"}`` instead of being guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from lunaris_agent.winget.lines import (
    is_nothing_to_upgrade,
    is_result_limit_note,
    upgrade_count,
)
from lunaris_agent.winget.results import ScanFailure, ScanResult, ScanRow
from lunaris_agent.winget.tables import (
    REFUSED,
    Table,
    UnparseableError,
    has_rows_without_table,
    parse_output,
    read_tables,
)
from lunaris_agent.winget.text import ELLIPSIS, normalise_cell


def _failed(failure: ScanFailure) -> ScanResult:
    return ScanResult(updates=(), error=failure)


def _refused() -> ScanResult:
    return _failed(REFUSED)


def _to_updates(table: Table) -> list[ScanRow]:
    available_index, source_index = table.roles()
    updates: list[ScanRow] = []
    for cells in table.rows:
        available = cells[available_index] if available_index is not None else ""
        source = cells[source_index] if source_index is not None else None
        if not available:
            continue  # a `winget list` row without an upgrade
        identifier = normalise_cell(cells[1])
        # A catalog Id (the only kind with an Available version) and a source have no spaces.
        if " " in identifier or (source is not None and " " in source):
            raise UnparseableError
        updates.append(
            ScanRow(
                package_identifier=identifier,
                name=normalise_cell(cells[0]),
                installed_version=cells[2],
                available_version=normalise_cell(available),
                source=source or None,
                explicit_targeting=table.explicit,
                truncated=identifier.endswith(ELLIPSIS),
            )
        )
    return updates


def parse_upgrade_output(text: str) -> ScanResult:
    """Parse the output of ``winget upgrade`` or ``winget list`` into the scan contract."""
    return parse_output(text, _parse_lines, _failed)


def _parse_lines(lines: Sequence[str]) -> ScanResult:
    reading = read_tables(lines)
    if reading.failure is not None:
        rows = [row for table in reading.tables for row in _to_updates(table)]
        return ScanResult(updates=tuple(rows), error=reading.failure)
    if not reading.tables:
        return _without_table(lines)
    updates = [row for table in reading.tables for row in _to_updates(table)]
    _check_count(lines[: reading.install_log], reading.tables, updates)
    return ScanResult(updates=tuple(updates), error=None)


def _without_table(lines: Sequence[str]) -> ScanResult:
    """Output with no table: a "nothing to upgrade" message, or rows we must not guess at."""
    if has_rows_without_table(lines, ignore=is_nothing_to_upgrade):
        return _refused()  # rows without a header or separator (e.g. piped through findstr)
    if any(upgrade_count(line) for line in lines):
        return _refused()  # "N upgrades available." but no table to read them from
    if any(is_nothing_to_upgrade(line) for line in lines):
        return ScanResult(updates=(), error=None)
    return _refused()


def _check_count(lines: Sequence[str], tables: Sequence[Table], updates: Sequence[ScanRow]) -> None:
    """Cross-check ``N upgrades available.`` (it counts the explicit-targeting rows too)."""
    counts = [count for line in lines if (count := upgrade_count(line)) is not None]
    plain_tables = [table for table in tables if not table.explicit]
    if not counts or len(plain_tables) > 1:
        return  # no count, or a further (e.g. pinned) table the count may not include
    if any(is_result_limit_note(line) for line in lines):
        return
    # Current winget counts both tables (006, 007); accept a count of the first table alone too.
    first_table = [row for row in updates if not row.explicit_targeting]
    if counts[0] not in (len(updates), len(first_table)):
        raise UnparseableError  # rows were lost (a cut paste, a redacted row): do not guess

"""Parser for ``winget list``: everything installed, the software inventory.

Pure functions, no I/O: the agent captures winget's stdout and hands the text to
:func:`parse_list_output`. The table is read by :mod:`lunaris_agent.winget.tables` (shared with
the update parse), strictly: every line of the table must be a complete row. Unlike the
update parse, every row counts: winget packages, and ARP or MSIX entries without a source whose
ids may hold spaces (``Adobe AIR``). The Available column, when shown, is not part of the
inventory. A cut id (``…``) is kept, marked ``truncated``; exact duplicates are kept as they
are (two installs of one package; the server collapses them).

The inventory replaces what the server knew, so a short list must never pass for a whole one:
a winget failure, a source that could not be searched, a list cut at winget's result limit, the
upgrade listing (only what can be upgraded), or anything unreadable is an error, and
``No installed package found matching input criteria.`` (in any language) is the only way to
say "nothing installed".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lunaris_agent.winget.lines import (
    is_no_applicable_upgrade_message,
    is_no_installed_package_message,
    is_result_limit_note,
    is_search_failure_warning,
    upgrade_count,
)
from lunaris_agent.winget.results import InstalledRow, InventoryResult, ScanFailure
from lunaris_agent.winget.tables import (
    REFUSED,
    Table,
    UnparseableError,
    has_rows_without_table,
    parse_output,
    read_tables,
)
from lunaris_agent.winget.text import normalise_cell
from lunaris_agent.winget.words import TRAILER_FLAGS
from lunaris_protocol.packages import TRUNCATION_MARKS

RESULT_LIMIT: Final = "winget cut the list at its result limit"
UPGRADE_LISTING: Final = "the upgradable packages only (winget upgrade), not everything installed"


def parse_list_output(text: str) -> InventoryResult:
    """Parse the output of ``winget list`` into the inventory: every row, or an error."""
    return parse_output(text, _parse_lines, _failed)


def _failed(failure: ScanFailure) -> InventoryResult:
    return InventoryResult(software=(), error=failure)


def _parse_lines(lines: Sequence[str]) -> InventoryResult:
    reading = read_tables(lines, strict=True)
    if reading.failure is not None:
        rows = [row for table in reading.tables for row in _to_installed(table)]
        return InventoryResult(software=tuple(rows), error=reading.failure)
    if _lists_upgrades_only(lines, reading.tables):
        return _failed(ScanFailure(code=None, message=UPGRADE_LISTING))
    warning = next((line.strip() for line in lines if is_search_failure_warning(line)), None)
    if warning is not None:
        # The packages of the failed source would be listed under other (local) ids.
        return _failed(ScanFailure(code=None, message=warning))
    if any(is_result_limit_note(line) for line in lines):
        return _failed(ScanFailure(code=None, message=RESULT_LIMIT))
    if not reading.tables:
        return _without_table(lines)
    if len(reading.tables) > 1:
        raise UnparseableError  # `winget list` prints one table: this is other output
    return InventoryResult(software=tuple(_to_installed(reading.tables[0])), error=None)


def _lists_upgrades_only(lines: Sequence[str], tables: Sequence[Table]) -> bool:
    """What only ``winget upgrade`` (or ``list --upgrade-available``) prints: the count of
    upgrades, the explicit-targeting table, the unknown-version and pin trailers."""
    return any(table.explicit for table in tables) or any(
        upgrade_count(line) is not None
        or any(flag in line for flag in TRAILER_FLAGS)
        or is_no_applicable_upgrade_message(line)
        for line in lines
    )


def _without_table(lines: Sequence[str]) -> InventoryResult:
    """Output with no table: "nothing installed", or rows we must not guess at."""
    if has_rows_without_table(lines, ignore=is_no_installed_package_message):
        return _failed(REFUSED)  # rows without a header or separator (e.g. piped through findstr)
    if any(is_no_installed_package_message(line) for line in lines):
        return InventoryResult(software=(), error=None)
    return _failed(REFUSED)


def _to_installed(table: Table) -> list[InstalledRow]:
    _, source_index = table.roles()
    rows: list[InstalledRow] = []
    for cells in table.rows:
        identifier = normalise_cell(cells[1])
        source = cells[source_index] if source_index is not None else ""
        if " " in source:
            raise UnparseableError  # a source name has no spaces: the row is misread
        rows.append(
            InstalledRow(
                package_identifier=identifier,
                name=normalise_cell(cells[0]),
                version=normalise_cell(cells[2]),
                source=source or None,
                truncated=identifier.endswith(TRUNCATION_MARKS),
            )
        )
    return rows

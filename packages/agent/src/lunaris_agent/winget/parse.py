"""Parser for the tables printed by ``winget upgrade`` and ``winget list``.

Pure functions, no I/O: the agent captures winget's stdout (bytes, decoded as UTF-8) and hands
the text to :func:`parse_upgrade_output`.

The parse is carried by the table's structure: the dashed separator line, and the *display
columns* where the header labels begin. winget's UI follows the Windows display language, so
the localised strings of :mod:`lunaris_agent.winget.words` are only hints (to name the 4th
column, to recognise the explicit-targeting title and the "nothing to upgrade" messages).
Whatever cannot be read safely is refused as ``{"code": null, "message": "unparseable"}``
instead of being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from lunaris_agent.winget.columns import Column, locate_columns, split_row
from lunaris_agent.winget.lines import (
    ends_table,
    find_failure,
    is_explicit_targeting_title,
    is_nothing_to_upgrade,
    is_result_limit_note,
    looks_like_row,
    separator_width,
    starts_install_log,
    upgrade_count,
)
from lunaris_agent.winget.results import ScanFailure, ScanResult, ScanRow
from lunaris_agent.winget.text import ELLIPSIS, clean_lines, normalise_cell
from lunaris_agent.winget.words import AVAILABLE_LABELS, SOURCE_LABELS, fold_message

UNPARSEABLE: Final = "unparseable"


def _refused() -> ScanResult:
    return ScanResult(updates=(), error=ScanFailure(code=None, message=UNPARSEABLE))


class _UnparseableError(Exception):
    """Raised inside the parse when the output cannot be read safely."""


_Role = Literal["available", "source"]


def _role_from_label(label: str) -> _Role | None:
    folded = fold_message(label)
    if folded in AVAILABLE_LABELS:
        return "available"
    if folded in SOURCE_LABELS:
        return "source"
    return None


def _is_version_like(cell: str) -> bool:
    return any(char.isdigit() for char in cell) or cell in ("Unknown", "Latest")


def _role_from_cells(cells: Iterable[str]) -> _Role:
    """Fallback for an unknown 4th label: versions mean Available, plain names mean Source."""
    values = [cell for cell in cells if cell]
    if all(_is_version_like(value) for value in values):
        return "available" if values else "source"
    if all(re.fullmatch(r"[A-Za-z][\w.-]*", value) for value in values):
        return "source"
    raise _UnparseableError


@dataclass(frozen=True, slots=True)
class _Table:
    columns: tuple[Column, ...]
    width: int
    explicit: bool
    rows: tuple[tuple[str, ...], ...]  # aligned cells, in file order
    end_line: int  # index of the first line after the table


def _read_rows(
    lines: Sequence[str], start: int, columns: Sequence[Column], width: int
) -> tuple[list[tuple[str, ...]], int]:
    """Rows from ``start`` until a blank line, a trailer, the next table or the install log."""
    boundaries = [column.start for column in columns]
    rows: list[tuple[str, ...]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if not line.strip() or ends_table(line):
            break
        if index + 1 < len(lines) and separator_width(lines[index + 1]) is not None:
            break  # this line is the header of the next table
        cells = split_row(line, boundaries, width)
        if cells is not None and cells[1] and cells[2]:
            rows.append(tuple(cells))
        elif starts_install_log(line):
            break
        elif looks_like_row(line):
            raise _UnparseableError  # a row that does not line up with the header
        # else: a stray non-row line (redaction, bad paste) inside the table is skipped
        index += 1
    return rows, index


def _roles(table: _Table) -> tuple[int | None, int | None]:
    """Indexes of the Available and Source columns (None when absent)."""
    labels = [column.label for column in table.columns]
    if len(labels) == 3:
        return None, None
    if len(labels) == 5:
        # Name, Id, Version, Available, Source: refuse a header that says otherwise.
        if _role_from_label(labels[3]) == "source" or _role_from_label(labels[4]) == "available":
            raise _UnparseableError
        return 3, 4
    role = _role_from_label(labels[3]) or _role_from_cells(row[3] for row in table.rows)
    return (3, None) if role == "available" else (None, 3)


def _to_updates(table: _Table) -> list[ScanRow]:
    available_index, source_index = _roles(table)
    updates: list[ScanRow] = []
    for cells in table.rows:
        available = cells[available_index] if available_index is not None else ""
        source = cells[source_index] if source_index is not None else None
        if not available:
            continue  # a `winget list` row without an upgrade
        identifier = normalise_cell(cells[1])
        # A catalog Id (the only kind with an Available version) and a source have no spaces.
        if " " in identifier or (source is not None and " " in source):
            raise _UnparseableError
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


def _header_ahead(lines: Sequence[str], index: int) -> bool:
    """Is this line a header or a title, i.e. is a dashed line one or two lines below?"""
    following = [line for line in lines[index + 1 : index + 6] if line.strip()][:2]
    return any(separator_width(line) is not None for line in following)


def _is_lost_row(lines: Sequence[str], index: int, previous: _Table) -> bool:
    """A row that lines up with the table above but comes after its end (a pasted blank line).

    It would be silently lost, so the output is refused. Other text after a table (the install
    log's dependency lists, notes) does not line up with the columns and is ignored.
    """
    line = lines[index]
    if not line.strip() or ends_table(line) or _header_ahead(lines, index):
        return False
    cells = split_row(line, [column.start for column in previous.columns], previous.width)
    return cells is not None and bool(cells[1]) and bool(cells[2])


def _find_tables(lines: Sequence[str]) -> tuple[list[_Table], int]:
    """All tables, and the index where the ``--all`` install log starts (or len(lines))."""
    tables: list[_Table] = []
    index = 0
    while index < len(lines):
        width = separator_width(lines[index])
        if width is None:
            line = lines[index]
            if tables and starts_install_log(line):
                return tables, index
            if tables and _is_lost_row(lines, index, tables[-1]):
                raise _UnparseableError  # rows after the table ended (e.g. a blank line pasted)
            index += 1
            continue
        header_index = index - 1
        while header_index >= 0 and not lines[header_index].strip():
            header_index -= 1
        if header_index < (tables[-1].end_line if tables else 0):
            raise _UnparseableError  # a dashed line without a header
        columns = locate_columns(lines[header_index])
        if not 3 <= len(columns) <= 5:
            raise _UnparseableError
        title = lines[header_index - 1] if header_index > 0 else ""
        rows, end = _read_rows(lines, index + 1, columns, width)
        tables.append(
            _Table(
                columns=tuple(columns),
                width=width,
                explicit=is_explicit_targeting_title(title),
                rows=tuple(rows),
                end_line=end,
            )
        )
        index = end
    return tables, len(lines)


def parse_upgrade_output(text: str) -> ScanResult:
    """Parse the output of ``winget upgrade`` or ``winget list`` into the scan contract."""
    lines = clean_lines(text)
    if not any(line.strip() for line in lines):
        # winget prints nothing at all when it is broken (e.g. VCLibs missing under SYSTEM).
        return ScanResult(updates=(), error=ScanFailure(code=None, message="empty output"))
    try:
        return _parse_lines(lines)
    except _UnparseableError:
        # An unreadable table still cannot hide a winget failure printed after it.
        failure = find_failure(lines)
        return _refused() if failure is None else ScanResult(updates=(), error=failure[1])


def _parse_lines(lines: Sequence[str]) -> ScanResult:
    tables, install_log = _find_tables(lines)
    # A failure in the `--all` install log is an install outcome, not a scan failure.
    failure = find_failure(lines[:install_log])
    if failure is not None:
        failed_at, error = failure
        complete = [table for table in tables if table.end_line <= failed_at]
        rows = [row for table in complete for row in _to_updates(table)]
        return ScanResult(updates=tuple(rows), error=error)
    if not tables:
        return _without_table(lines)
    updates = [row for table in tables for row in _to_updates(table)]
    _check_count(lines[:install_log], tables, updates)
    return ScanResult(updates=tuple(updates), error=None)


def _without_table(lines: Sequence[str]) -> ScanResult:
    """Output with no table: a "nothing to upgrade" message, or rows we must not guess at."""
    if any(looks_like_row(line) and not is_nothing_to_upgrade(line) for line in lines):
        return _refused()  # rows without a header or separator (e.g. piped through findstr)
    if any(upgrade_count(line) for line in lines):
        return _refused()  # "N upgrades available." but no table to read them from
    if any(is_nothing_to_upgrade(line) for line in lines):
        return ScanResult(updates=(), error=None)
    return _refused()


def _check_count(
    lines: Sequence[str], tables: Sequence[_Table], updates: Sequence[ScanRow]
) -> None:
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
        raise _UnparseableError  # rows were lost (a cut paste, a redacted row): do not guess

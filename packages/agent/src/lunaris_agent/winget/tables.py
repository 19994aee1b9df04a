"""Reading the tables winget prints (``winget upgrade``, ``winget list``): the one
implementation both parses share, :mod:`lunaris_agent.winget.parse` (the updates) and
:mod:`lunaris_agent.winget.installed` (the inventory).

Pure functions, no I/O. The reading is carried by the table's structure: the dashed separator
line, and the *display columns* where the header labels begin. winget's UI follows the Windows
display language, so the localised strings of :mod:`lunaris_agent.winget.words` are only
hints. Whatever cannot be read safely raises :class:`UnparseableError`, which the parses turn
into ``{"code": null, "message": "unparseable"}`` instead of a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from lunaris_agent.winget.columns import Column, locate_columns, split_row
from lunaris_agent.winget.lines import (
    ends_table,
    find_failure,
    is_explicit_targeting_title,
    looks_like_row,
    separator_width,
    starts_install_log,
)
from lunaris_agent.winget.results import ScanFailure
from lunaris_agent.winget.text import clean_lines
from lunaris_agent.winget.words import AVAILABLE_LABELS, SOURCE_LABELS, fold_message

UNPARSEABLE: Final = "unparseable"
REFUSED: Final = ScanFailure(code=None, message=UNPARSEABLE)
EMPTY_OUTPUT: Final = ScanFailure(code=None, message="empty output")

ResultT = TypeVar("ResultT")


class UnparseableError(Exception):
    """Raised inside a parse when the output cannot be read safely."""


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
    raise UnparseableError


@dataclass(frozen=True, slots=True)
class Table:
    """One table: Name, Id and Version, then Available and Source when they are shown."""

    columns: tuple[Column, ...]
    width: int
    explicit: bool  # under the explicit-targeting title
    rows: tuple[tuple[str, ...], ...]  # aligned cells, in file order
    end_line: int  # index of the first line after the table

    def roles(self) -> tuple[int | None, int | None]:
        """Indexes of the Available and Source columns (None when absent).

        A column whose cells are all empty is left out, so a 4th column is told apart by its
        label (or, for a label in no known language, by its cells).
        """
        labels = [column.label for column in self.columns]
        if len(labels) == 3:
            return None, None
        if len(labels) == 5:
            # Name, Id, Version, Available, Source: refuse a header that says otherwise.
            if (
                _role_from_label(labels[3]) == "source"
                or _role_from_label(labels[4]) == "available"
            ):
                raise UnparseableError
            return 3, 4
        role = _role_from_label(labels[3]) or _role_from_cells(row[3] for row in self.rows)
        return (3, None) if role == "available" else (None, 3)


@dataclass(frozen=True, slots=True)
class Reading:
    """What an output holds: its tables, where the ``--all`` install log starts, and the
    winget failure it ends in. After a failure, only the tables complete before it are kept."""

    lines: tuple[str, ...]
    tables: tuple[Table, ...]
    install_log: int  # index of the install log's first line (len(lines) when none)
    failure: ScanFailure | None


def parse_output(
    text: str,
    read: Callable[[Sequence[str]], ResultT],
    failed: Callable[[ScanFailure], ResultT],
) -> ResultT:
    """Clean captured output and ``read`` its lines; ``failed`` makes the result of a failure.

    Output that is empty, or that ``read`` finds unreadable (:class:`UnparseableError`), is a
    failure: the winget failure printed in it, if any, else a refusal.
    """
    lines = clean_lines(text)
    if not any(line.strip() for line in lines):
        # winget prints nothing at all when it is broken (e.g. VCLibs missing under SYSTEM).
        return failed(EMPTY_OUTPUT)
    try:
        return read(lines)
    except UnparseableError:
        # An unreadable table still cannot hide a winget failure printed after it.
        failure = find_failure(lines)
        return failed(REFUSED if failure is None else failure[1])


def read_tables(lines: Sequence[str], *, strict: bool = False) -> Reading:
    """The tables of cleaned output and the failure it ends in.

    A stray line inside a table (a redaction, a bad paste) is skipped, unless ``strict``: then
    every line of a table must be a complete row (Id and Version), or the output is refused.
    """
    tables, install_log = _find_tables(lines, strict=strict)
    # A failure in the `--all` install log is an install outcome, not a scan failure.
    found = find_failure(lines[:install_log])
    if found is None:
        return Reading(tuple(lines), tuple(tables), install_log, None)
    failed_at, failure = found
    complete = tuple(table for table in tables if table.end_line <= failed_at)
    return Reading(tuple(lines), complete, install_log, failure)


def has_rows_without_table(lines: Sequence[str], *, ignore: Callable[[str], bool]) -> bool:
    """Lines that look like rows although no table was found (e.g. piped through findstr)."""
    return any(looks_like_row(line) and not ignore(line) for line in lines)


def _read_rows(
    lines: Sequence[str], start: int, columns: Sequence[Column], width: int, *, strict: bool
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
        elif strict or looks_like_row(line):
            raise UnparseableError  # a row that does not line up with the header
        # else: a stray non-row line (redaction, bad paste) inside the table is skipped
        index += 1
    return rows, index


def _header_ahead(lines: Sequence[str], index: int) -> bool:
    """Is this line a header or a title, i.e. is a dashed line one or two lines below?"""
    following = [line for line in lines[index + 1 : index + 6] if line.strip()][:2]
    return any(separator_width(line) is not None for line in following)


def _is_lost_row(lines: Sequence[str], index: int, previous: Table) -> bool:
    """A row that lines up with the table above but comes after its end (a pasted blank line).

    It would be silently lost, so the output is refused. Other text after a table (the install
    log's dependency lists, notes) does not line up with the columns and is ignored.
    """
    line = lines[index]
    if not line.strip() or ends_table(line) or _header_ahead(lines, index):
        return False
    cells = split_row(line, [column.start for column in previous.columns], previous.width)
    return cells is not None and bool(cells[1]) and bool(cells[2])


def _find_tables(lines: Sequence[str], *, strict: bool) -> tuple[list[Table], int]:
    """All tables, and the index where the ``--all`` install log starts (or len(lines))."""
    tables: list[Table] = []
    index = 0
    while index < len(lines):
        width = separator_width(lines[index])
        if width is None:
            line = lines[index]
            if tables and starts_install_log(line):
                return tables, index
            if tables and _is_lost_row(lines, index, tables[-1]):
                raise UnparseableError  # rows after the table ended (e.g. a blank line pasted)
            index += 1
            continue
        header_index = index - 1
        while header_index >= 0 and not lines[header_index].strip():
            header_index -= 1
        if header_index < (tables[-1].end_line if tables else 0):
            raise UnparseableError  # a dashed line without a header
        columns = locate_columns(lines[header_index])
        if not 3 <= len(columns) <= 5:
            raise UnparseableError
        title = lines[header_index - 1] if header_index > 0 else ""
        rows, end = _read_rows(lines, index + 1, columns, width, strict=strict)
        tables.append(
            Table(
                columns=tuple(columns),
                width=width,
                explicit=is_explicit_targeting_title(title),
                rows=tuple(rows),
                end_line=end,
            )
        )
        index = end
    return tables, len(lines)

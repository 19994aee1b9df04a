"""A table's columns and its rows cut into cells, measured in display columns: a wide (East
Asian) character takes two, a combining mark none, as in the console winget drew the table for.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from lunaris_agent.winget.text import normalise_ellipsis
from lunaris_agent.winget.words import MAX_LABEL_WORDS, MULTIWORD_LABELS, fold_message


def char_width(char: str) -> int:
    """Console columns of one character, as winget counts them (East Asian Wide/Full = 2)."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(char) for char in text)


@dataclass(frozen=True, slots=True)
class _Measured:
    """A line with the display column where each of its characters starts."""

    text: str
    starts: tuple[int, ...]
    widths: tuple[int, ...]
    width: int

    @classmethod
    def of(cls, text: str) -> _Measured:
        starts: list[int] = []
        widths: list[int] = []
        column = 0
        for char in text:
            starts.append(column)
            widths.append(char_width(char))
            column += widths[-1]
        return cls(text, tuple(starts), tuple(widths), column)

    def char_at(self, column: int) -> str | None:
        """The character covering ``column`` (None past the end of the line)."""
        if column < 0 or column >= self.width:
            return None
        return self.text[bisect_right(self.starts, column) - 1]

    def index_at(self, column: int) -> int:
        """Index of the first character starting at or after ``column``."""
        index = bisect_left(self.starts, column)
        # Combining marks belong to the character before them, not to the next cell.
        while index < len(self.text) and self.widths[index] == 0:
            index += 1
        return index

    def is_clean_cut(self, column: int) -> bool:
        """A cell boundary must land just after the separating space (or past the row's end)."""
        before = self.char_at(column - 1)
        return column <= 0 or before is None or before == " "

    def starts_token(self, column: int) -> bool:
        here = self.char_at(column)
        return here is not None and here != " " and self.is_clean_cut(column)


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    start: int  # display column where the label, and every cell below it, begins


def _words_with_columns(line: str) -> list[tuple[int, int, str]]:
    """Runs of non-space characters as (start column, end column, text)."""
    words: list[tuple[int, int, str]] = []
    column = 0
    current: list[str] = []
    start = 0
    for char in [*line, " "]:
        if char in " \t":
            if current:
                words.append((start, column, "".join(current)))
                current = []
        else:
            if not current:
                start = column
            current.append(char)
        column += char_width(char)
    return words


def locate_columns(header: str) -> list[Column]:
    """Column labels and their start columns, measured in display width.

    Labels are separated by at least one space; labels that themselves contain a space (ko-KR
    ``장치 ID``) are merged back using the known labels.
    """
    words = _words_with_columns(header)
    columns: list[Column] = []
    index = 0
    while index < len(words):
        last = index
        for candidate in range(index + 1, min(index + MAX_LABEL_WORDS, len(words))):
            if words[candidate][0] != words[candidate - 1][1] + 1:
                break
            joined = " ".join(word[2] for word in words[index : candidate + 1])
            if fold_message(joined) in MULTIWORD_LABELS:
                last = candidate
        label = " ".join(word[2] for word in words[index : last + 1])
        columns.append(Column(label=label, start=words[index][0]))
        index = last + 1
    return columns


def _cut(measured: _Measured, boundaries: Sequence[int]) -> list[str] | None:
    """Cells of a row cut at the given display columns, or None when a cut splits a word."""
    if not all(measured.is_clean_cut(boundary) for boundary in boundaries[1:]):
        return None
    indexes = [measured.index_at(boundary) for boundary in boundaries]
    indexes[0] = 0
    indexes.append(len(measured.text))
    return [measured.text[a:b].strip() for a, b in pairwise(indexes)]


def _snap(measured: _Measured, boundaries: Sequence[int]) -> list[str] | None:
    """Re-align a row whose cells are shifted by a wide character measured differently.

    Only non-ASCII text before the first bad cut can explain a shift (ASCII is always one
    column), and the shifted cut must land exactly on a word start: otherwise refuse.
    """
    first_bad = next(
        k for k in range(1, len(boundaries)) if not measured.is_clean_cut(boundaries[k])
    )
    prefix = measured.text[: measured.index_at(boundaries[first_bad])]
    if prefix.isascii():
        return None
    for shift in (-1, 1, -2, 2):
        shifted = [*boundaries[:first_bad], *(b + shift for b in boundaries[first_bad:])]
        if shifted[first_bad] <= shifted[first_bad - 1]:
            continue
        if measured.starts_token(shifted[first_bad]):
            cells = _cut(measured, shifted)
            if cells is not None:
                return cells
    return None


def split_row(line: str, boundaries: Sequence[int], table_width: int) -> list[str] | None:
    """Cut a row at the header's column starts; None when it does not line up.

    Tries the line with a lossy ``???`` read as ``…`` and as shown, preferring the reading that
    fits inside the dashed line (a row is never wider than its table); then, for a row shifted
    by a mis-measured wide character, snaps to the nearest word start.
    """
    candidates = list(dict.fromkeys([normalise_ellipsis(line, lossy=True), line]))
    measured = [_Measured.of(candidate) for candidate in candidates]
    aligned = [(m, cells) for m in measured if (cells := _cut(m, boundaries)) is not None]
    for m, cells in aligned:
        if m.width <= table_width:
            return cells
    if aligned:
        return aligned[0][1]
    for m in measured:
        snapped = _snap(m, boundaries)
        if snapped is not None:
            return snapped
    return None

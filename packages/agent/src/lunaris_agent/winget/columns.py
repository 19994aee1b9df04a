"""A table's columns and its rows cut into cells, measured in display columns as winget
measures them (:mod:`lunaris_agent.winget.width`: per grapheme cluster, a wide (East Asian)
one takes two), as in the console winget drew the table for.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from lunaris_agent.winget.text import normalise_ellipsis
from lunaris_agent.winget.width import cluster_width, clusters
from lunaris_agent.winget.words import MAX_LABEL_WORDS, MULTIWORD_LABELS, fold_message


@dataclass(frozen=True, slots=True)
class _Measured:
    """A line cut into grapheme clusters, with the display column where each one starts.

    A cell boundary can only fall between clusters: a combining mark, a variation selector or
    the rest of a ZWJ sequence stays with the character it belongs to.
    """

    text: str
    clusters: tuple[str, ...]
    offsets: tuple[int, ...]  # index in ``text`` where each cluster starts
    starts: tuple[int, ...]  # display column where each cluster starts
    width: int

    @classmethod
    def of(cls, text: str) -> _Measured:
        parts = clusters(text)
        widths = [cluster_width(part) for part in parts]
        starts = [0, *accumulate(widths)]
        offsets = [0, *accumulate(len(part) for part in parts)]
        return cls(text, tuple(parts), tuple(offsets[:-1]), tuple(starts[:-1]), starts[-1])

    def cluster_at(self, column: int) -> str | None:
        """The cluster covering ``column`` (None past the end of the line)."""
        if column < 0 or column >= self.width:
            return None
        return self.clusters[bisect_right(self.starts, column) - 1]

    def index_at(self, column: int) -> int:
        """Index in ``text`` of the first cluster starting at or after ``column``."""
        position = bisect_left(self.starts, column)
        return self.offsets[position] if position < len(self.offsets) else len(self.text)

    def is_clean_cut(self, column: int) -> bool:
        """A cell boundary must land just after the separating space (or past the row's end)."""
        before = self.cluster_at(column - 1)
        return column <= 0 or before is None or before == " "

    def starts_token(self, column: int) -> bool:
        here = self.cluster_at(column)
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
    for part in [*clusters(line), " "]:
        if part in (" ", "\t"):
            if current:
                words.append((start, column, "".join(current)))
                current = []
        else:
            if not current:
                start = column
            current.append(part)
        column += cluster_width(part)
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

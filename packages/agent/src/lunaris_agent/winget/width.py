"""How many console columns winget gives a piece of text: it counts per grapheme cluster.

winget sizes its table columns with ``UTF8ColumnWidth`` (``AppInstallerStrings.cpp`` in
winget-cli's shared library): the cell is put in Unicode normalisation form C, cut into
grapheme clusters by ICU's character ``BreakIterator``, and each cluster counts 2 when the
East Asian Width of its *first* code point is Wide or Fullwidth, else 1. So:

* a cluster is never 0 wide: ``e`` + U+0301 is one cluster of 1, and a combining mark standing
  alone (its own cluster) counts 1, not 0;
* an emoji with a variation selector (``❤️`` = U+2764 U+FE0F) or a ZWJ sequence
  (``👨‍👩‍👧``) is one cluster, as wide as its first code point: ``❤`` is Neutral, so 1;
  ``👨`` is Wide, so 2 (the rest of the sequence adds nothing);
* decomposed Hangul (conjoining jamo L V T) is one cluster, 2 wide, like the syllable it
  composes to.

The agent uses :mod:`regex` for both halves: its ``\\X`` is the extended grapheme cluster of
UAX #29, the segmentation ICU implements, and its ``\\p{East_Asian_Width=…}`` classes come from
the same (current) Unicode data, so clusters and widths agree on one Unicode version. It is
one of PyPI's most used packages, kept up with every Unicode release, and publishes wheels for
win_amd64 (the agent's frozen Windows build) as well as Linux. The alternatives do not count
as winget does (``wcwidth`` gives combining marks 0 and widens emoji with U+FE0F to 2), are no
longer kept (``grapheme``, Unicode 13), or have no Windows wheels (``PyICU``).

One difference remains by construction: winget measures each cell on its own, the parse
measures the whole line. They disagree only where a cell begins with a mark that would join
the padding space before it, and then the row does not line up and is refused, never misread.
"""

from __future__ import annotations

import unicodedata
from typing import Final

import regex

_CLUSTER_RE: Final = regex.compile(r"\X")
_WIDE_RE: Final = regex.compile(r"[\p{East_Asian_Width=Wide}\p{East_Asian_Width=Fullwidth}]")


def clusters(text: str) -> list[str]:
    """The grapheme clusters of ``text``, in order (joined, they give ``text`` back)."""
    if text.isascii() and "\r" not in text:
        return list(text)  # ASCII clusters are single characters, except CR LF
    return _CLUSTER_RE.findall(text)


def cluster_width(cluster: str) -> int:
    """Console columns of one grapheme cluster, as winget counts them: 2 when the first code
    point of its NFC form is East Asian Wide or Fullwidth, else 1."""
    if cluster.isascii():
        return 1
    first = unicodedata.normalize("NFC", cluster)[:1]
    return 2 if _WIDE_RE.match(first) else 1


def display_width(text: str) -> int:
    """Console columns of ``text``, as winget counts them (:func:`cluster_width` of each of
    its grapheme clusters)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return sum(cluster_width(cluster) for cluster in clusters(text))

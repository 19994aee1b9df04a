"""Versions in winget's order, as a string that sorts the same way byte by byte: Python sorts
by it, and the database compares it in an index (the software search's ranges).

winget's rules (its ``Utility::Version``): surrounding spaces go; ``< V`` and ``> V`` (how
``winget list`` shows a version it can only bound) sort just below and just above ``V``;
leading non-digits go when a digit comes before the first dot (``v1.2`` is ``1.2``); the
rest splits at dots into parts, each a number followed by any other text; trailing parts
that are a bare zero do not count (``1.0`` is ``1``); parts compare by number, then a part
without other text is the greater (``1.0-beta`` is older than ``1``), then by the other
text case-folded; a missing part is a bare zero. ``Latest`` is newer and ``Unknown`` older
than any other version.

The key: one class character (``0`` Unknown, ``1`` a version, ``2`` Latest), then the parts
as tokens, then an end token. A missing part compares as a bare zero, so a version is its
parts followed by bare zeros for ever, and a run of bare zeros can only be ordered by what
follows it. So each token is a run of ``k`` bare zeros together with the part after it:

- ``N`` (the part has a number above zero), ``99 - k`` in two digits (the longer the run,
  the later the big number comes: the smaller), the number (a letter saying how many
  digits, ``B7``, ``C10``, then them) and its text (``:`` when none, which is the greater,
  otherwise ``-``, the case-folded text's UTF-8 in hex, and ``,``);
- ``L`` (a part of zero with text, below a bare zero), ``k`` in two digits (the longer the
  run, the greater), then its text as above;
- ``M`` for the end (bare zeros for ever: above any ``L``, below any ``N``), then ``1``,
  ``2`` or ``3`` for ``< V``, ``V``, ``> V``.

Every character is ASCII, so the database must compare it bytewise (``COLLATE "C"`` on
PostgreSQL, SQLite's default).

One liberty: winget reads a part's number with ``strtoull``, which also takes a minus sign
(``-1`` wraps to a huge number); here a part starting with ``-`` is text.
"""

import re
from typing import Final

MAX_SORT_KEY: Final = 512
"""Longer than any key of a version the protocol carries (128 characters: at most 65 parts,
so a run of zeros fits two digits)."""

_DIGITS = re.compile(r"\+?([0-9]+)")
_FIRST_DIGIT = re.compile(r"[0-9]")
_MAX_NUMBER: Final = 2**64 - 1
_UNKNOWN, _VERSION, _LATEST = "0", "1", "2"
_ENDS: Final = {"<": "M1", "": "M2", ">": "M3"}

Part = tuple[int, str]


def _part(raw: str) -> Part:
    text = raw.strip()
    number = _DIGITS.match(text)
    if number is None or int(number.group(1)) > _MAX_NUMBER:
        return (0, text)
    return (int(number.group(1)), text[number.end() :])


def _parse(version: str, *, trim: bool = True) -> tuple[str, list[Part]]:
    """(``<``, ``>`` or "", the parts)."""
    text = version.strip()
    bound = ""
    if text[:2] in ("< ", "> "):
        bound, text = text[0], text[2:]
    digit, dot = _FIRST_DIGIT.search(text), text.find(".")
    if digit is not None and (dot < 0 or digit.start() < dot):
        text = text[digit.start() :]
    parts: list[Part] = []
    position = 0
    while position < len(text):
        end = text.find(".", position)
        end = len(text) if end < 0 else end
        parts.append(_part(text[position:end]))
        position = end + 1
    while trim and parts and parts[-1] == (0, ""):
        parts.pop()
    return bound, parts


def _text(other: str) -> str:
    return ":" if not other else "-" + other.casefold().encode().hex() + ","


def _encoded(parts: list[Part]) -> str:
    tokens: list[str] = []
    zeros = 0
    for number, other in parts:
        if number == 0 and not other:
            zeros += 1
            continue
        if number == 0:
            tokens.append(f"L{zeros:02d}{_text(other)}")
        else:
            digits = str(number)
            tokens.append(f"N{99 - zeros:02d}{chr(ord('A') + len(digits))}{digits}{_text(other)}")
        zeros = 0
    return "".join(tokens)


def _special(parts: list[Part]) -> str | None:
    if len(parts) == 1 and parts[0][0] == 0:
        word = parts[0][1].casefold()
        if word == "latest":
            return _LATEST
        if word == "unknown":
            return _UNKNOWN
    return None


def sort_key(version: str) -> str:
    """A string that sorts as winget orders versions (equal for versions winget calls
    equal: ``1.0`` and ``1``)."""
    bound, found = _parse(version)
    special = _special(found)
    if special is not None:
        return special + _ENDS[bound]
    return (_VERSION + _encoded(found) + _ENDS[bound])[:MAX_SORT_KEY]


def parts(version: str) -> tuple[Part, ...]:
    """The parts as written, trailing zeros kept, texts case-folded (``1.0`` is
    ``((1, ""), (0, ""))``): version wildcards compare these."""
    _, found = _parse(version, trim=False)
    return tuple((number, other.casefold()) for number, other in found)


def newest(versions: list[str]) -> str | None:
    return max(versions, key=sort_key, default=None)

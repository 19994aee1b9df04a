"""Captured winget output as a console would show it: terminal noise (escape sequences,
spinner frames, download bars, ``\\r`` redraws) removed, mojibake repaired, and every form of
the ellipsis winget cuts a cell with read as ``…``."""

from __future__ import annotations

import re
from typing import Final

from lunaris_protocol.text import printable_message

ELLIPSIS: Final = "\u2026"

# UTF-8 "…" (E2 80 A6) decoded with the wrong code page: cp1252, or cp437 (PowerShell's default).
_ELLIPSIS_MOJIBAKE: Final = ("â€¦", "ΓÇª")
# A lossy capture turns each of the three UTF-8 bytes of "…" into "?".
_LOSSY_ELLIPSIS: Final = "???"

_ESCAPE_RE: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, ESC[2K line clears, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: ESC]9;4;… taskbar progress
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
)
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Spinner frame: 3 spaces and one of -\|/ (v1.28 and older draw it even when redirected).
_SPINNER_RE: Final = re.compile(r"^\s*[-\\|/]\s*$")
# Download bar: cells of █/▒ (or their cp437/cp1252 mojibake, or pasted as literal \u2588).
_PROGRESS_RE: Final = re.compile(
    r"^\s*(?:[█▓▒░]|Γû[êÆôæ]|â–[ˆ’“‘]|\\u25(?:88|91|92|93))+(?:\s.*)?$"
)


def clean_message(text: str) -> str:
    """Text winget printed, as a message may carry it: no escape sequences or control
    characters (tabs and line breaks kept)."""
    return printable_message(_ESCAPE_RE.sub("", text))


def strip_terminal_noise(raw: str) -> str:
    """What a console finally shows for one physical line.

    Escape sequences and control characters are removed, and of the ``\\r``-separated redraws
    only the last non-blank one is kept (spinner frames and clear-lines are overwritten).
    """
    segments = [_CONTROL_RE.sub("", part) for part in _ESCAPE_RE.sub("", raw).split("\r")]
    visible = [part for part in segments if part.strip()]
    return visible[-1].rstrip() if visible else ""


def is_progress_noise(line: str) -> bool:
    """Spinner frames and download bars are never part of a scan."""
    return bool(_SPINNER_RE.match(line) or _PROGRESS_RE.match(line))


def repair_mojibake(line: str) -> str:
    """Undo UTF-8 that was decoded as cp1252 or cp437 (e.g. ``â€¦`` or ``ΓÇª`` for ``…``).

    The round trip succeeds only on text that really is such mojibake: correct UTF-8 text with
    non-ASCII characters fails to re-decode and is returned unchanged.
    """
    if line.isascii():
        return line
    for codec in ("cp1252", "cp437"):
        try:
            fixed = line.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        if fixed != line:
            return fixed
    return line


def normalise_ellipsis(text: str, *, lossy: bool = False) -> str:
    """Turn the mojibake forms of ``…`` back into ``…``.

    With ``lossy``, a ``???`` that ends a word is taken for a lossily captured ``…`` too (a
    winget Id never contains ``?``).
    """
    for form in _ELLIPSIS_MOJIBAKE:
        text = text.replace(form, ELLIPSIS)
    if lossy:
        text = re.sub(r"\?\?\?(?=\s|$)", ELLIPSIS, text)
    return text


def normalise_cell(cell: str) -> str:
    """A cut cell ends in ``…``: report every mojibake/lossy form of it as ``…``."""
    cell = normalise_ellipsis(cell)
    if cell.endswith(_LOSSY_ELLIPSIS):
        cell = cell[: -len(_LOSSY_ELLIPSIS)] + ELLIPSIS
    return cell


def clean_lines(text: str) -> list[str]:
    """Split captured output into the lines a console would show, minus progress noise."""
    lines: list[str] = []
    for raw in text.removeprefix("\ufeff").split("\n"):
        line = repair_mojibake(strip_terminal_noise(raw))
        if is_progress_noise(line):
            continue
        lines.append(normalise_ellipsis(line))
    return lines

"""What msiexec's verbose log (``/l*v``) says of a failed install: the lines that name the
failure, and the exit code. Windows Installer writes its logs in UTF-16 LE."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

MAX_LOG_BYTES: Final = 32 * 1024 * 1024
MAX_LINE: Final = 300
FAILURE: Final = re.compile(
    r"return value 3|installation failed|installation operation failed|\berror \d{4}\b"
    r"|error status: [1-9]|MainEngineThread is returning [1-9]",
    re.IGNORECASE,
)
EXIT_CODE: Final = re.compile(
    r"(?:success or error status|MainEngineThread is returning):? (\d+)", re.IGNORECASE
)


def read_log(path: Path) -> str:
    """The log's text ("" when there is none); its end when it is huge."""
    try:
        with path.open("rb") as source:
            size = source.seek(0, 2)
            source.seek(max(0, size - MAX_LOG_BYTES))
            raw = source.read()
    except OSError:
        return ""
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", errors="replace")
    if raw[1:200:2].count(0) > 50:  # UTF-16 LE without its byte-order mark
        return raw[len(raw) % 2 :].decode("utf-16-le", errors="replace")
    return raw.decode("utf-8", errors="replace")


def failure_lines(text: str) -> list[str]:
    """The lines that say what failed, each once, in the log's order."""
    found: dict[str, None] = {}
    for line in text.splitlines():
        if FAILURE.search(line):
            found.setdefault(line.strip()[:MAX_LINE], None)
    return list(found)


def exit_code(text: str) -> int | None:
    """The installer's own exit code, from the log's last line that gives one."""
    codes = EXIT_CODE.findall(text)
    return int(codes[-1]) if codes else None


def excerpt(lines: list[str], limit: int) -> str:
    """As many of ``lines`` as fit in ``limit`` characters, joined by `` | ``."""
    taken: list[str] = []
    for line in lines:
        if len(" | ".join([*taken, line])) > limit:
            break
        taken.append(line)
    return " | ".join(taken)

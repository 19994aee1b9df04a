"""``lunaris-agent scan [--from-file FILE] [--json]`` and ``lunaris-agent inventory
[--from-file FILE] [--json]``: what the agent would report, the updates waiting or everything
installed, sent nowhere.

With ``--from-file`` they parse saved winget output (``winget upgrade``, ``winget list``);
otherwise they run winget as the agent does. ``--json`` prints exactly one JSON object, the scan
contract (``{"updates": [...], "error": ...}``) or the inventory (``{"software": [...],
"error": ...}``); without it, a readable table. The exit code is 1 when the result is an error,
so scripts need not parse the output to know.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from lunaris_agent.winget.installed import parse_list_output
from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.results import InventoryResult, ScanResult


def _saved_output(from_file: Path) -> str:
    """Bytes, not read_text(): universal newlines would turn the spinner's bare "\r" redraws
    into lines of their own. Undecodable bytes become U+FFFD instead of crashing the read."""
    return from_file.read_bytes().decode("utf-8", errors="replace")


def scan(*, from_file: Path | None, winget_path: Path | None, as_json: bool) -> int:
    if from_file is not None:
        result = parse_upgrade_output(_saved_output(from_file))
    else:
        from lunaris_agent.winget import upgrade

        result = asyncio.run(upgrade.scan(winget_path))
    _show(result.to_json_dict() if as_json else _as_table(result))
    return 0 if result.error is None else 1


def _as_table(result: ScanResult) -> str:
    if result.error is not None:
        code = f" ({result.error.code})" if result.error.code else ""
        return f"scan failed{code}: {result.error.message}"
    if not result.updates:
        return "no updates waiting"
    headers = ("Name", "Id", "Installed", "Available", "Source", "Notes")
    rows = [
        (
            row.name,
            row.package_identifier,
            row.installed_version,
            row.available_version,
            row.source or "",
            ", ".join(
                note
                for note, applies in (
                    ("explicit targeting", row.explicit_targeting),
                    ("id truncated", row.truncated),
                )
                if applies
            ),
        )
        for row in result.updates
    ]
    return f"{_text_table(headers, rows)}\n{len(rows)} updates waiting"


def inventory(*, from_file: Path | None, winget_path: Path | None, as_json: bool) -> int:
    if from_file is not None:
        result = parse_list_output(_saved_output(from_file))
    else:
        from lunaris_agent.winget import upgrade

        result = asyncio.run(upgrade.list_installed(winget_path))
    _show(result.to_json_dict() if as_json else _inventory_table(result))
    return 0 if result.error is None else 1


def _inventory_table(result: InventoryResult) -> str:
    if result.error is not None:
        code = f" ({result.error.code})" if result.error.code else ""
        return f"winget list failed{code}: {result.error.message}"
    if not result.software:
        return "nothing installed"
    headers = ("Name", "Id", "Version", "Source", "Notes")
    rows = [
        (
            row.name,
            row.package_identifier,
            row.version,
            row.source or "",
            "id truncated" if row.truncated else "",
        )
        for row in result.software
    ]
    return f"{_text_table(headers, rows)}\n{len(rows)} installed"


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain table for a person: the headers, a dashed line, the rows, columns 2 apart."""
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        for cells in (headers, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _show(output: dict[str, object] | str) -> None:
    """One JSON object, or a table for a person."""
    if isinstance(output, str):
        _print(output, fallback=output.encode("ascii", errors="backslashreplace").decode("ascii"))
    else:
        _print(json.dumps(output, ensure_ascii=False), fallback=json.dumps(output))


def _print(text: str, *, fallback: str) -> None:
    try:
        print(text)
    except UnicodeEncodeError:
        # A console code page that cannot show a name (e.g. cp1252 and CJK): escape, don't crash.
        print(fallback)

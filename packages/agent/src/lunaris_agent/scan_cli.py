"""``lunaris-agent scan [--from-file FILE] [--json]``: what the agent would report, sent nowhere.

With ``--from-file`` it parses saved winget output; otherwise it runs winget as the agent does.
``--json`` prints exactly one JSON object, the scan contract; without it, a readable table.
The exit code is 1 when the scan is an error, so scripts need not parse the output to know.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lunaris_agent.winget.parse import parse_upgrade_output
from lunaris_agent.winget.results import ScanResult


def scan(*, from_file: Path | None, winget_path: Path | None, as_json: bool) -> int:
    if from_file is not None:
        # Bytes, not read_text(): universal newlines would turn the spinner's bare "\r" redraws
        # into lines of their own. Undecodable bytes become U+FFFD instead of crashing the scan.
        result = parse_upgrade_output(from_file.read_bytes().decode("utf-8", errors="replace"))
    else:
        from lunaris_agent.winget import upgrade

        result = asyncio.run(upgrade.scan(winget_path))
    if as_json:
        payload = result.to_json_dict()
        _print(json.dumps(payload, ensure_ascii=False), fallback=json.dumps(payload))
    else:
        table = _as_table(result)
        _print(table, fallback=table.encode("ascii", errors="backslashreplace").decode("ascii"))
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
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        for cells in (headers, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"{len(rows)} updates waiting")
    return "\n".join(line.rstrip() for line in lines)


def _print(text: str, *, fallback: str) -> None:
    try:
        print(text)
    except UnicodeEncodeError:
        # A console code page that cannot show a name (e.g. cp1252 and CJK): escape, don't crash.
        print(fallback)

"""``lunaris-agent scan --json --from-file FILE``: parse a saved winget output and print it."""

from __future__ import annotations

import json
from pathlib import Path

from lunaris_agent.winget import parse_upgrade_output


def scan_from_file(path: Path) -> int:
    """Print exactly one JSON object (the scan contract); exit code 1 when it reports an error."""
    # Bytes, not read_text(): universal newlines would turn the spinner's bare "\r" redraws into
    # lines of their own. Undecodable bytes become U+FFFD instead of crashing the scan.
    text = path.read_bytes().decode("utf-8", errors="replace")
    result = parse_upgrade_output(text)
    payload = result.to_json_dict()
    try:
        print(json.dumps(payload, ensure_ascii=False))
    except UnicodeEncodeError:
        # A console code page that cannot show a name (e.g. cp1252 and CJK): same JSON, escaped.
        print(json.dumps(payload))
    return 0 if result.error is None else 1

"""The agent's logs: size-bounded JSON-lines files, plus readable lines on the console when it
runs in the foreground.

One JSON object per line (``ts``, ``level``, ``logger``, ``message``, and ``error`` with the
traceback when there is one) so a support engineer can grep or ship them as they are. The files
rotate at :data:`MAX_BYTES` and keep :data:`BACKUPS` old ones: at most 6 × 5 MB on a PC.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

LOG_FILE_NAME: Final = "agent.log"
MAX_BYTES: Final = 5 * 1024 * 1024
BACKUPS: Final = 5
CONSOLE_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_STANDARD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with ``extra=`` (device id, command id...) become keys of their own.
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_dir: Path | None, *, foreground: bool, verbose: bool = False) -> None:
    """Sends the agent's logs to ``log_dir/agent.log`` (when given) and, in the foreground, to
    stderr. Replaces whatever handlers an earlier call installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / LOG_FILE_NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        file_handler.setFormatter(JsonLinesFormatter())
        root.addHandler(file_handler)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        root.addHandler(console)
    # httpx logs every request at INFO: a line per heartbeat would drown what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

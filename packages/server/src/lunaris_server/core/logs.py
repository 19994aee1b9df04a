"""Structured logs: JSON lines in staging/prod (or when asked), readable text in development.

Everything, uvicorn's own records included, goes through one structlog pipeline, and the
request id bound by the middleware appears on every line logged while serving it.
"""

import logging
import re
import sys
from typing import TextIO

import structlog

from lunaris_server.core.settings import Environment, Settings


def configure_logging(settings: Settings, *, log_file: TextIO | None = None) -> None:
    """Logs to stderr; with ``log_file``, everything goes there instead and only warnings and
    errors to stderr as well (the demo keeps its terminal for its own lines)."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.env is not Environment.DEV
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_credentials,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=log_file is None and sys.stderr.isatty())
    )
    structlog.configure(
        # Level first: a disabled debug line then costs a comparison, not a rendering.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        handlers[0].setLevel(logging.WARNING)
        handlers.append(logging.StreamHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The request middleware writes one access line with the request id; uvicorn's is redundant.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False


_CREDENTIAL_HEADER = re.compile(
    r"^([<>] (?:proxy-)?(?:authorization|cookie|set-cookie)):.*$", re.IGNORECASE | re.MULTILINE
)
"""A header line as the WebSocket library logs handshakes at debug level."""
_TOKEN = re.compile(r"\b(ln[dae]_)[A-Za-z0-9_-]{16,}")
"""A device, API or enrollment token (``security.py``)."""


def redact_credentials(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Libraries log what they see at debug level, credentials included: keep them out."""
    message = event.get("event")
    if isinstance(message, str):
        message = _CREDENTIAL_HEADER.sub(r"\1: [redacted]", message)
        event["event"] = _TOKEN.sub(r"\1[redacted]", message)
    return event


def _identity(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event

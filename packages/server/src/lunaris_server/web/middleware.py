"""ASGI middleware: request ids with an access log line, and a request body size limit."""

import logging
import time
import uuid
from collections.abc import Sequence

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("lunaris.http")

_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: logged only when they fail."""
_ROUTINE_PATHS = frozenset({"/api/agent/heartbeat"})
"""Every agent calls these every minute: successes are logged at debug level only."""


class RequestContextMiddleware:
    """Gives every request an id (kept from ``X-Request-ID`` when sane), binds it to the logs,
    echoes it in the response, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        # When it arrived, for what the response must say it shows everything up to (a
        # console page's live channel catches up from there).
        scope.setdefault("state", {})["received_at"] = time.time()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            if status >= 400 or path not in _QUIET_PATHS:
                level = logging.DEBUG if path in _ROUTINE_PATHS and status < 400 else logging.INFO
                log.log(
                    level,
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.replace("-", "").isalnum():
                return text
    return None


def declared_length(scope: Scope) -> int:
    """The body length a request's ``Content-Length`` declares (0 when it declares none)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit with 413, before the application reads them whole.

    Checks ``Content-Length`` up front and counts streamed (chunked) bytes as they arrive.
    Update reports get a larger limit than everything else, and so do the paths under a
    large prefix (an agent MSI's upload).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        large_paths: dict[str, int] | None = None,
        large_prefixes: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.large_paths = large_paths or {}
        self.large_prefixes = large_prefixes or {}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.large_prefixes.items():
            if path.startswith(prefix):
                return limit
        return self.large_paths.get(path, self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if declared_length(scope) > limit:
            await _too_large(send, limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _too_large(send, limit)


class BodyTooLarge(HTTPException):
    """An HTTP error, so the framework answers 413 instead of wrapping it as a parse error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"error":{"code":"body_too_large","message":"request body exceeds '
        + str(limit).encode()
        + b' bytes"}}'
    )
    await send_json(send, 413, body)


async def send_json(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answers with an already encoded JSON body, below the framework."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

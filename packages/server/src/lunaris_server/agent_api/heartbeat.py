"""``POST /api/agent/heartbeat`` answered in front of the framework.

Every agent heartbeats every minute, so at 50,000 PCs this one request is most of the
server's traffic, and most heartbeats only say "still here" (answered from the device cache,
see devices/service.heartbeat). For those the framework's routing, dependency resolution,
response validation and middleware cost more than the work itself. This ASGI middleware takes
the plain case: a well-formed body, a bearer token, and a service call that succeeds. Anything
else (no token, a query string, an invalid body, an unknown device, an error, a body over the
limit) is handed on to the application unchanged, with the body replayed, so the FastAPI
route in agent_api.py remains the one place that decides what an error looks like.

Commands waiting for the device ride on the answer (see commands/delivery.py): that costs a
query only for devices the process knows to have some, so the plain answer stays the same
pre-encoded bytes.
"""

from __future__ import annotations

import uuid
from typing import Final

import structlog
from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lunaris_protocol import AgentCommand, HeartbeatRequest, HeartbeatResponse, NewIdentity
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.core.errors import NotAuthenticated
from lunaris_server.devices import service as devices
from lunaris_server.devices.cache import DeviceCache
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.realtime import outbox
from lunaris_server.web.deps import bearer_token
from lunaris_server.web.middleware import declared_length, incoming_request_id, send_json
from lunaris_server.web.state import AppState

HEARTBEAT_PATH: Final = "/api/agent/heartbeat"
_EMPTY_BODIES: Final = (b"", b"null", b"{}")

log = structlog.get_logger("lunaris.http")


class HeartbeatFastPath:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._answer: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != HEARTBEAT_PATH
            or scope["method"] != "POST"
            or scope.get("query_string")  # the route refuses what it does not know
            or declared_length(scope) > self.max_body_bytes  # refused at once, not read
        ):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, self.max_body_bytes)
        token = _bearer_token(scope)
        request = _parse(body) if complete and token is not None else None
        if token is None or request is None:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        state: AppState = scope["app"].state.lunaris
        client = scope.get("client")
        try:
            waiting = await record_heartbeat(
                state, token=token, request=request, ip=client[0] if client else None
            )
        except Exception:  # the application answers it, as it would any failed request
            await self.app(scope, _replay(body, complete, receive), send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        await send_json(
            send,
            200,
            self._heartbeat_answer(state, waiting),
            [(b"x-request-id", request_id.encode())],
        )
        log.debug("request", method="POST", path=HEARTBEAT_PATH, status=200)

    def _heartbeat_answer(self, state: AppState, answer: list[AgentCommand] | NewIdentity) -> bytes:
        if answer:
            return heartbeat_response(state, answer).model_dump_json().encode()
        # The same for every device without commands waiting: encode it once.
        if self._answer is None:
            self._answer = heartbeat_response(state, []).model_dump_json().encode()
        return self._answer


async def record_heartbeat(
    state: AppState, *, token: str, request: HeartbeatRequest, ip: str | None
) -> list[AgentCommand] | NewIdentity:
    """A heartbeat's work, for the fast path and the route alike: the device is seen, its news
    applied and announced; returns the commands waiting for it (or, for the PC an admin split
    off a cloned identity, its own identity)."""
    now = state.clock()
    seen = devices.plain_heartbeat(
        device_token=token,
        request=request,
        now=now,
        last_seen=state.part(LastSeenWriter),
        cache=state.part(DeviceCache),
        ip=ip,
    )
    if seen is not None:
        if not state.part(CommandDelivery).may_have(seen):
            return []  # most heartbeats: not even a session is opened
        async with state.database.session() as session:
            return await state.part(CommandDelivery).for_heartbeat(
                session, device_token=token, cache=state.part(DeviceCache), now=now
            )
    async with state.database.session() as session:
        identity = await devices.heartbeat(
            session,
            device_token=token,
            request=request,
            now=now,
            last_seen=state.part(LastSeenWriter),
            cache=state.part(DeviceCache),
            ip=ip,
        )
        await outbox.commit(session, state)
        if identity is not None:
            return identity
        # Usually no query: only devices known to have commands waiting are looked up.
        return await state.part(CommandDelivery).for_heartbeat(
            session, device_token=token, cache=state.part(DeviceCache), now=now
        )


def heartbeat_response(
    state: AppState, answer: list[AgentCommand] | NewIdentity
) -> HeartbeatResponse:
    identity = answer if isinstance(answer, NewIdentity) else None
    return HeartbeatResponse(
        heartbeat_interval_s=state.settings.heartbeat_interval_s,
        scan_interval_s=state.settings.scan_interval_s,
        inventory_interval_s=state.settings.inventory_interval_s,
        commands=[] if identity is not None else answer,
        new_identity=identity,
    )


def _parse(body: bytes) -> HeartbeatRequest | None:
    if body.strip() in _EMPTY_BODIES:
        return HeartbeatRequest()
    try:
        return HeartbeatRequest.model_validate_json(body)
    except ValidationError:
        return None


def _bearer_token(scope: Scope) -> str | None:
    """The token, as every route reads it; None when there is none or it is malformed (the
    application then answers that)."""
    try:
        return bearer_token(HTTPConnection(scope))
    except NotAuthenticated:
        return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body, and whether it is complete; stops reading past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # a disconnect: let the application see it
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that yields what was already read, then continues with the original."""
    replayed = False

    async def replaying() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replaying

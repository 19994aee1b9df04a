"""``/ws/console``: the live channel of a logged-in browser (what changed, as it happens)."""

import asyncio
import contextlib

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from lunaris_server.accounts.deps import authenticate_user
from lunaris_server.core.errors import NotAuthenticated
from lunaris_server.realtime import outbox
from lunaris_server.realtime.console_hub import RESYNC, ConsoleClient
from lunaris_server.web.deps import same_origin
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.ws")
router = APIRouter()

POLICY_VIOLATION = 1008
SEND_TIMEOUT_S = 10.0
"""A client that takes longer than this to accept one message is dropped."""


def _state(websocket: WebSocket) -> AppState:
    state: AppState = websocket.app.state.lunaris
    return state


@router.websocket("/ws/console")
async def console_socket(websocket: WebSocket) -> None:
    state = _state(websocket)
    # Cookies go along with a handshake whatever the page: another site's must not get in.
    if not same_origin(websocket):
        await websocket.close(code=POLICY_VIOLATION, reason="cross-origin")
        return
    try:
        since = _since(websocket)
    except ValueError as bad:
        await websocket.send_denial_response(JSONResponse({"detail": str(bad)}, status_code=400))
        return
    try:
        async with state.database.session() as session:
            await authenticate_user(websocket, session, state, state.clock())
            await outbox.commit(session, state)
        user_session = getattr(websocket.state, "user_session", None)
    except NotAuthenticated:
        await websocket.close(code=POLICY_VIOLATION, reason="not authenticated")
        return
    await websocket.accept()
    client = state.realtime.console.connect(
        session_id=user_session.id if user_session is not None else None,
        since=since,
    )
    try:
        await _serve_console(websocket, client)
    finally:
        state.realtime.console.disconnect(client)


_LONGEST_SINCE = 10**15
"""Milliseconds: far past any real time."""


def _since(websocket: WebSocket) -> float | None:
    """``since``: when the page's request arrived (epoch milliseconds, the page's
    ``data-live-since``), in seconds; None without one. Anything else: ValueError."""
    query = websocket.query_params
    if not query:
        return None
    given = query.getlist("since")
    if set(query) != {"since"} or len(given) != 1 or not given[0].isdigit():
        raise ValueError("the query takes one parameter: since=<epoch milliseconds>")
    return min(int(given[0]), _LONGEST_SINCE) / 1000


async def _serve_console(websocket: WebSocket, client: ConsoleClient) -> None:
    async def send_events() -> None:
        while True:
            text = await client.queue.get()
            if text == RESYNC:
                client.resync_pending = False
            await asyncio.wait_for(websocket.send_text(text), SEND_TIMEOUT_S)

    async def read_until_closed() -> None:
        # Consoles send nothing we act on; reading notices the close.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    await _until_first_done(send_events(), read_until_closed(), client.dropped.wait())
    if websocket.client_state is WebSocketState.CONNECTED:
        code, reason = client.close_with
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code=code, reason=reason), 1)


async def _until_first_done(*coroutines: object) -> None:
    tasks = [asyncio.ensure_future(c) for c in coroutines]  # type: ignore[call-overload]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(
                error, WebSocketDisconnect | TimeoutError | OSError
            ):
                log.warning("console socket ended with an error", error=repr(error))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

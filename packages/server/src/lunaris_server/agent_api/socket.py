"""``/ws/agent``: the agent's push channel, opened with its device token."""

import contextlib

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.core.errors import NotAuthenticated
from lunaris_server.devices import service as devices
from lunaris_server.web.deps import bearer_token
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.ws")
router = APIRouter()

POLICY_VIOLATION = 1008


@router.websocket("/ws/agent")
async def agent_socket(websocket: WebSocket) -> None:
    """The agent's push channel: commands reach it here at once when it is connected."""
    state: AppState = websocket.app.state.lunaris
    try:
        token = bearer_token(websocket)
        if token is None:
            raise NotAuthenticated("a device token is required")
        async with state.database.session() as session:
            device = await devices.authenticate(session, device_token=token)
            device_id = device.id
            await session.rollback()
    except NotAuthenticated:
        await websocket.close(code=POLICY_VIOLATION, reason="not authenticated")
        return
    await websocket.accept()

    async def close(reason: str) -> None:
        await websocket.close(code=POLICY_VIOLATION, reason=reason)

    socket = await state.realtime.agents.attach(device_id, websocket.send_text, close)
    log.info("agent socket opened", device_id=device_id)
    try:
        try:
            # What was queued while the agent was away goes out now, not at its next heartbeat.
            await state.part(CommandDelivery).push(device_id)
        except Exception:
            log.exception("could not push waiting commands", device_id=device_id)
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                # The agent sends nothing on this socket (progress goes over REST, where it
                # is spooled); reading notices the close.
                await websocket.receive_text()
    finally:
        await state.realtime.agents.detach(socket)
        log.info("agent socket closed", device_id=device_id)

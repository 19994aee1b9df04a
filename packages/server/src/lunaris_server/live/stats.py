"""What this process's realtime layer is doing, for admins and monitoring."""

from fastapi import APIRouter
from pydantic import BaseModel

from lunaris_server.accounts.deps import AdminUser
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import StateDep

router = APIRouter(prefix="/api/realtime", tags=["realtime"], responses=error_responses(401, 403))


class RealtimeStats(BaseModel):
    process_id: str
    console_clients: int
    console_resyncs: int
    """Clients told to reload since this process started (they fell behind)."""
    console_drops: int
    """Clients disconnected for not reading."""
    agent_sockets: int
    """Agent sockets held by this process."""


@router.get("/stats")
async def stats(_admin: AdminUser, state: StateDep) -> RealtimeStats:
    realtime = state.realtime
    return RealtimeStats(
        process_id=realtime.bus.process_id,
        console_clients=realtime.console.client_count,
        console_resyncs=realtime.console.resyncs,
        console_drops=realtime.console.drops,
        agent_sockets=realtime.agents.local_count,
    )

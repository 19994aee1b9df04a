"""``POST /api/devices/{device_id}/agent-update``: an admin moves one device's agent to an
agent version (``GET /api/agent-versions``)."""

from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from lunaris_protocol import AgentVersion
from lunaris_server.accounts.deps import AdminUser, user_actor
from lunaris_server.agents import service as agents
from lunaris_server.commands.agent_updates import queue_agent_update
from lunaris_server.commands.api import CommandOut
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api", tags=["commands"], responses=error_responses(401, 422))


class AgentUpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: AgentVersion
    """An agent version in ``GET /api/agent-versions``."""
    force: bool = False
    """Also a version that is not newer than the device's agent (a downgrade, a reinstall)."""


@router.post(
    "/devices/{device_id}/agent-update",
    status_code=201,
    responses={**BODY_ERRORS, **error_responses(403, 404, 409)},
)
async def update_agent(
    device_id: UUID,
    body: AgentUpdateRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> CommandOut:
    """Queues ``UPDATE_AGENT``: the agent downloads the version's MSI with its own token,
    checks its size, SHA-256 and (if pinned at install) its signer, and installs it. 409
    for an agent that cannot update itself, a version not newer than its own (unless
    ``force``), or an agent update open already."""
    version = await agents.get_version(state.settings.resolved_agent_downloads_dir, body.version)
    command, hostname = await queue_agent_update(
        session,
        device_id=str(device_id),
        version=version,
        force=body.force,
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    await work.commit()
    return CommandOut.of(command, hostname)

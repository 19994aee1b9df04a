"""Agent versions: ``GET /api/agent-versions`` (anyone logged in), and for admins
``PUT /api/agent-versions/{version}`` (the MSI as the request body, streamed to the
downloads folder) and ``DELETE``. Both writes are audited."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from lunaris_protocol import AGENT_VERSION_PATTERN, MAX_AGENT_VERSION
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.agents import service as agents
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(
    prefix="/api/agent-versions", tags=["agent versions"], responses=error_responses(401, 403)
)

VersionPath = Annotated[
    str, Path(max_length=MAX_AGENT_VERSION, pattern=AGENT_VERSION_PATTERN, examples=["0.2.0"])
]


class AgentVersionOut(BaseModel):
    version: str
    file_name: str
    size_bytes: int
    sha256: str
    added_at: datetime
    download_url: str
    """For a browser with a console session (the agents' own URL takes their token)."""

    @classmethod
    def of(cls, version: agents.AgentVersion) -> "AgentVersionOut":
        return cls(
            version=version.version,
            file_name=version.name,
            size_bytes=version.size_bytes,
            sha256=version.sha256,
            added_at=version.added_at,
            download_url=f"/downloads/{version.name}",
        )


@router.get("")
async def list_agent_versions(_user: CurrentUser, state: StateDep) -> list[AgentVersionOut]:
    """Newest first."""
    found = await agents.list_versions(state.settings.resolved_agent_downloads_dir)
    return [AgentVersionOut.of(v) for v in found]


@router.put(
    "/{version}",
    status_code=201,
    responses=error_responses(409, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def add_agent_version(
    version: VersionPath,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> AgentVersionOut:
    """The MSI of ``version``, as the request body (``application/x-msi`` or
    ``application/octet-stream``). A version that is there already is refused."""
    added = await agents.add_version(
        session,
        state.settings.resolved_agent_downloads_dir,
        version,
        request.stream(),
        actor=user_actor(request, admin),
        now=now,
    )
    await work.commit()
    return AgentVersionOut.of(added)


@router.delete("/{version}", status_code=204, responses=error_responses(404))
async def remove_agent_version(
    version: VersionPath,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    await agents.remove_version(
        session,
        state.settings.resolved_agent_downloads_dir,
        version,
        actor=user_actor(request, admin),
        now=now,
    )
    await work.commit()
    return Response(status_code=204)

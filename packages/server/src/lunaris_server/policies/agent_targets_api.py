"""Agent targets: ``GET /api/agent-targets`` (anyone logged in: each target with where it
stands), and for admins ``PUT`` / ``DELETE`` ``/api/agent-targets/fleet`` and
``/api/agent-targets/groups/{group_id}``. Setting a target again resumes a halted one."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lunaris_protocol import AgentVersion
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.agents import service as agents
from lunaris_server.policies import agent_targets
from lunaris_server.policies.models import AgentTarget
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(
    prefix="/api/agent-targets", tags=["agent versions"], responses=error_responses(401, 422)
)


class AgentTargetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: AgentVersion
    """An agent version in ``GET /api/agent-versions``."""
    force: bool = False
    """Devices that run a newer agent go back to this version too (refused otherwise)."""
    at_once: Annotated[int, Field(ge=1, le=10_000)] = 50
    """Agent updates open at a time (downloads of the MSI in flight)."""
    halt_after_failures: Annotated[int, Field(ge=1, le=10_000)] = 3
    """The target halts once this many of its updates failed."""


class AgentTargetOut(BaseModel):
    id: int
    scope: str
    """``fleet`` or ``group:<id>``."""
    group_id: int | None
    version: str
    forced: bool
    at_once: int
    halt_after_failures: int
    halted_at: datetime | None
    halt_reason: str
    set_by: str
    set_at: datetime
    at_target: int
    waiting: int
    updating: int
    failed: int
    cannot_update_themselves: int

    @classmethod
    def of(cls, target: AgentTarget, progress: agent_targets.Progress) -> "AgentTargetOut":
        return cls(
            id=target.id,
            scope=target.scope,
            group_id=target.group_id,
            version=target.version,
            forced=target.forced,
            at_once=target.at_once,
            halt_after_failures=target.halt_after_failures,
            halted_at=target.halted_at,
            halt_reason=target.halt_reason,
            set_by=target.set_by,
            set_at=target.set_at,
            at_target=progress.at_target,
            waiting=progress.waiting,
            updating=progress.updating,
            failed=progress.failed,
            cannot_update_themselves=progress.cannot,
        )


@router.get("")
async def list_agent_targets(_user: CurrentUser, session: SessionDep) -> list[AgentTargetOut]:
    found = await agent_targets.list_targets(session)
    progress = await agent_targets.progress(session, found)
    return [AgentTargetOut.of(t, progress[t.id]) for t in found]


async def _set(
    group_id: int | None,
    body: AgentTargetRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> AgentTargetOut:
    version = await agents.get_version(state.settings.resolved_agent_downloads_dir, body.version)
    target = await agent_targets.set_target(
        session,
        group_id=group_id,
        version=version,
        force=body.force,
        at_once=body.at_once,
        halt_after_failures=body.halt_after_failures,
        actor=user_actor(request, admin),
        now=now,
    )
    progress = (await agent_targets.progress(session, [target]))[target.id]
    await work.commit()
    return AgentTargetOut.of(target, progress)


@router.put("/fleet", responses={**BODY_ERRORS, **error_responses(403, 404, 409)})
async def set_fleet_target(
    body: AgentTargetRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> AgentTargetOut:
    """The version every device runs, unless one of its groups has a target of its own.
    409: devices in the fleet run a newer agent (unless ``force``)."""
    return await _set(None, body, request, admin, session, work, state, now)


@router.put("/groups/{group_id}", responses={**BODY_ERRORS, **error_responses(403, 404, 409)})
async def set_group_target(
    group_id: RowId,
    body: AgentTargetRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> AgentTargetOut:
    """The version the group's devices run (over the fleet's target)."""
    return await _set(group_id, body, request, admin, session, work, state, now)


@router.delete("/fleet", status_code=204, responses=error_responses(403, 404))
async def remove_fleet_target(
    request: Request, admin: AdminUser, session: SessionDep, work: WorkDep, now: NowDep
) -> Response:
    """No more updates are queued; those queued go on."""
    await agent_targets.remove_target(
        session, group_id=None, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return Response(status_code=204)


@router.delete("/groups/{group_id}", status_code=204, responses=error_responses(403, 404))
async def remove_group_target(
    group_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await agent_targets.remove_target(
        session, group_id=group_id, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return Response(status_code=204)

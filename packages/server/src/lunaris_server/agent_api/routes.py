"""The agent's REST API under ``/api/agent``: register, heartbeat, update report, inventory,
command progress, and the MSI of an agent version for a self-update."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Request
from starlette.responses import FileResponse

from lunaris_protocol import (
    CommandProgress,
    CommandProgressResponse,
    CommandStatus,
    HeartbeatRequest,
    HeartbeatResponse,
    InventoryReport,
    InventoryReportResponse,
    RegisterRequest,
    RegisterResponse,
    UpdateReport,
    UpdateReportResponse,
)
from lunaris_server.agent_api.heartbeat import heartbeat_response, record_heartbeat
from lunaris_server.agents import files
from lunaris_server.agents import service as agents
from lunaris_server.agents.api import VersionPath
from lunaris_server.commands import progress as progress_steps
from lunaris_server.core.errors import NotFound
from lunaris_server.devices import registration as registrations
from lunaris_server.devices import service as devices
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.realtime import outbox
from lunaris_server.software import service as software
from lunaris_server.updates import service as updates
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep, client_ip, device_token
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(
    prefix="/api/agent", tags=["agent"], responses={**BODY_ERRORS, **error_responses(401)}
)


@router.post("/register", responses=error_responses(403, 409, 429))
async def register(
    body: RegisterRequest,
    request: Request,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> RegisterResponse:
    registration = await registrations.register(
        session,
        request=body,
        now=now,
        ip=client_ip(request),
        throttle=state.registration_throttle,
        grace=state.settings.reenroll_grace,
        lifecycle=state.part(DeviceLifecycle),
    )
    await work.commit()  # a refusal's audit entry too
    if isinstance(registration, registrations.Refusal):
        raise registration.error
    if not registration.created:
        # The old token no longer works: nothing may reach a socket it opened.
        await state.realtime.agents.disconnect(
            [registration.device.id], reason="device token replaced"
        )
    return RegisterResponse(
        device_token=registration.device_token,
        heartbeat_interval_s=state.settings.heartbeat_interval_s,
        scan_interval_s=state.settings.scan_interval_s,
        inventory_interval_s=state.settings.inventory_interval_s,
    )


@router.post("/heartbeat")
async def heartbeat(
    request: Request, body: Annotated[HeartbeatRequest | None, Body()] = None
) -> HeartbeatResponse:
    # Every agent calls this every minute, so it resolves its own state, clock and session
    # instead of through dependencies: they cost more than the work of a plain heartbeat.
    state: AppState = request.app.state.lunaris
    waiting = await record_heartbeat(
        state,
        token=device_token(request),
        request=body or HeartbeatRequest(),
        ip=client_ip(request),
    )
    return heartbeat_response(state, waiting)


@router.post("/update-report")
async def update_report(body: UpdateReport, request: Request) -> UpdateReportResponse:
    # Every agent reports after each scan, so as the heartbeat this resolves its own state,
    # clock and session (dependencies cost about 0.5 ms a request), and apply_report checks
    # the token in its first statement (a separate lookup would cost a query and an ORM object).
    state: AppState = request.app.state.lunaris
    async with state.database.session() as session:
        outcome = await updates.apply_report(
            session, device_token=device_token(request), report=body, now=state.clock()
        )
        await outbox.commit(session, state)
    return UpdateReportResponse(
        added=len(outcome.added),
        changed=len(outcome.changed),
        removed=len(outcome.removed),
        unchanged=outcome.unchanged,
    )


@router.post("/inventory")
async def inventory(body: InventoryReport, request: Request) -> InventoryReportResponse:
    """Everything installed on the device. Send the digest alone first: a known one costs a
    single statement; ``full_list_needed`` asks for the list."""
    state: AppState = request.app.state.lunaris
    async with state.database.session() as session:
        outcome = await software.apply_inventory(
            session, device_token=device_token(request), report=body, now=state.clock()
        )
        await outbox.commit(session, state)
    return InventoryReportResponse(
        full_list_needed=outcome.full_list_needed,
        added=outcome.added,
        changed=outcome.changed,
        removed=outcome.removed,
        unchanged=outcome.unchanged,
    )


@router.post("/commands/{command_id}/progress", responses=error_responses(404))
async def command_progress(
    command_id: UUID,
    body: CommandProgress,
    request: Request,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> CommandProgressResponse:
    """One numbered step of a command; a step already applied is acknowledged and ignored.
    The answer is the command's status on the server after the step (``failed`` for a
    partial one: agents that predate it could not read it)."""
    # Not the device row's lock: the command row is what this locks.
    device = await devices.authenticate(session, device_token=device_token(request), lock=False)
    command = await progress_steps.apply_progress(
        session, device_id=device.id, command_id=str(command_id), progress=body, now=now
    )
    status = CommandStatus(command.status)
    await work.commit()
    return CommandProgressResponse.of(status)


@router.get("/installers/{version}", response_class=FileResponse, responses=error_responses(404))
async def agent_installer(
    version: VersionPath, request: Request, session: SessionDep, state: StateDep
) -> FileResponse:
    """The MSI of an agent version, for the device's own token (an ``UPDATE_AGENT``
    command): with HTTP ``Range``, so a download cut off goes on where it stopped."""
    await devices.authenticate(session, device_token=device_token(request), lock=False)
    await session.close()  # the file may take minutes: no database connection held meanwhile
    folder = state.settings.resolved_agent_downloads_dir
    found = await agents.get_version(folder, version)
    path = files.path_of(folder, found.name)
    if path is None:
        raise NotFound(f"no agent version {version} in the downloads folder")
    return FileResponse(path, media_type="application/x-msi", filename=found.name)

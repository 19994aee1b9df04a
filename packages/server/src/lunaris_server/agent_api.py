"""The agent's REST API under ``/api/agent``: register, heartbeat, update report."""

from typing import Annotated

from fastapi import APIRouter, Body, Request

from lunaris_protocol import (
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterRequest,
    RegisterResponse,
    UpdateReport,
    UpdateReportResponse,
)
from lunaris_server.deps import (
    CurrentDevice,
    NowDep,
    SessionDep,
    StateDep,
    client_ip,
    device_token,
)
from lunaris_server.devices import service as devices
from lunaris_server.realtime import outbox
from lunaris_server.state import AppState
from lunaris_server.updates import service as updates

router = APIRouter(prefix="/api/agent", tags=["agent"])


@router.post("/register")
async def register(
    body: RegisterRequest, request: Request, session: SessionDep, state: StateDep, now: NowDep
) -> RegisterResponse:
    registration = await devices.register(session, request=body, now=now, ip=client_ip(request))
    await outbox.commit(session, state.realtime)
    return RegisterResponse(
        device_token=registration.device_token,
        heartbeat_interval_s=state.settings.heartbeat_interval_s,
        scan_interval_s=state.settings.scan_interval_s,
    )


@router.post("/heartbeat")
async def heartbeat(
    request: Request, body: Annotated[HeartbeatRequest | None, Body()] = None
) -> HeartbeatResponse:
    # Every agent calls this every minute, so it resolves its own state, clock and session
    # instead of through dependencies: they cost more than the work of a plain heartbeat.
    state: AppState = request.app.state.lunaris
    async with state.database.session() as session:
        await devices.heartbeat(
            session,
            device_token=device_token(request),
            request=body or HeartbeatRequest(),
            now=state.clock(),
            last_seen=state.last_seen,
            cache=state.device_cache,
        )
        await outbox.commit(session, state.realtime)
    return HeartbeatResponse(
        heartbeat_interval_s=state.settings.heartbeat_interval_s,
        scan_interval_s=state.settings.scan_interval_s,
    )


@router.post("/update-report")
async def update_report(
    body: UpdateReport, device: CurrentDevice, session: SessionDep, state: StateDep, now: NowDep
) -> UpdateReportResponse:
    outcome = await updates.apply_report(session, device=device, report=body, now=now)
    await outbox.commit(session, state.realtime)
    return UpdateReportResponse(
        added=len(outcome.added),
        changed=len(outcome.changed),
        removed=len(outcome.removed),
        unchanged=outcome.unchanged,
    )

"""Console JSON API for deployments: commands queued together, with a live summary. Admins
run updates on a selection and retry failures; everyone logged in reads."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import CommandStatus
from lunaris_protocol.limits import MAX_PACKAGES_PER_COMMAND
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.commands import deployment_queries as queries
from lunaris_server.commands import deployments
from lunaris_server.commands import service as commands
from lunaris_server.commands.api import CommandOut, PackageId
from lunaris_server.commands.deployment_queries import DeploymentQuery, DeploymentSummary
from lunaris_server.commands.deployments import DeploymentRun
from lunaris_server.commands.models import Deployment
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.queries import DeviceSelection
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api", tags=["deployments"], responses=error_responses(401, 422))


class NewDeploymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selection: DeviceSelection
    """The devices: ``{"device_ids": [...]}``, or ``{"matching": {filters}}`` as the device
    list filters (``{}`` for the whole fleet)."""
    packages: (
        Annotated[list[PackageId], Field(min_length=1, max_length=MAX_PACKAGES_PER_COMMAND)] | None
    )
    """The packages to install (each device gets those it reports waiting), or null for
    every update each device reports. Required, so that "all" is always asked for
    explicitly."""


class SummaryOut(BaseModel):
    total: int
    """Devices in the deployment (each device's latest attempt counts)."""
    commands: int
    """All its commands, the attempts retries replaced included."""
    by_status: dict[CommandStatus, int]
    """The latest attempts by status, every status included (``partial``: some packages
    installed, others not)."""
    waiting: int
    """Queued or sent: not started by their agent yet."""
    waiting_offline: int
    """Of those, the ones whose device is offline now."""
    offline_since: datetime | None
    """The last time any of those offline devices was seen: all have been silent since."""
    finished: bool
    """Nothing waits or runs any more."""
    text: str
    """In words: "7 of 9 succeeded, 1 failed, 1 waiting (offline since 14:02 UTC)"."""

    model_config = ConfigDict(from_attributes=True)


class DeploymentOut(BaseModel):
    id: str
    kind: Literal["manual", "policy"]
    """``manual``: an admin's bulk action."""
    title: str
    packages: list[str] | None
    """The packages it installs; null for every update each device reports."""
    source: str | None
    """The source a package run was limited to."""
    selection: dict[str, object] | None
    """How its devices were chosen, for a run on a selection."""
    created_by: str
    created_at: datetime
    updated_at: datetime
    """The last time commands joined it (a retry)."""
    skipped_busy: int
    """Devices that got no command: an open command of theirs installs the same already."""
    skipped_up_to_date: int
    """Selected devices that got no command: they report nothing of it waiting."""
    summary: SummaryOut

    @classmethod
    def of(cls, deployment: Deployment, summary: DeploymentSummary) -> "DeploymentOut":
        row = {name: getattr(deployment, name) for name in cls.model_fields if name != "summary"}
        return cls.model_validate({**row, "summary": SummaryOut.model_validate(summary)})


class DeploymentDetailOut(DeploymentOut):
    commands: Paginated[CommandOut]
    """Its commands, newest first (``limit`` and ``offset`` page them)."""


class DeploymentRunOut(BaseModel):
    deployment: DeploymentOut
    created: int
    """Commands this request queued."""
    skipped_busy: int
    """Devices left out: an open command of theirs installs the same already."""
    skipped_up_to_date: int
    """Devices left out: they report nothing of it waiting."""
    skipped_revoked: int
    """Devices left out of a retry: revoked since."""


async def _run_out(
    session: AsyncSession, state: AppState, now: datetime, run: DeploymentRun
) -> DeploymentRunOut:
    deployment, summary = await queries.get_deployment(
        session, deployment_id=run.deployment.id, liveness=state.liveness, now=now
    )
    return DeploymentRunOut(
        deployment=DeploymentOut.of(deployment, summary),
        created=len(run.created),
        skipped_busy=run.skipped_busy,
        skipped_up_to_date=run.skipped_up_to_date,
        skipped_revoked=run.skipped_revoked,
    )


@router.post(
    "/deployments", status_code=201, responses={**BODY_ERRORS, **error_responses(403, 404, 409)}
)
async def create_deployment(
    body: NewDeploymentRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeploymentRunOut:
    """Runs updates on the selected devices, as one deployment: a RUN_UPDATES for each one
    that reports something waiting (of ``packages``) and has no open command installing the
    same; the others are counted. 409 when no device gets a command."""
    device_ids = await device_queries.selected_ids(
        session, selection=body.selection, liveness=state.liveness, now=now
    )
    run = await deployments.run_on_devices(
        session,
        device_ids=device_ids,
        packages=body.packages,
        selection=body.selection.described(),
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    answer = await _run_out(session, state, now, run)
    await work.commit()
    return answer


@router.get("/deployments")
async def list_deployments(
    _user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    page: PageDep,
    kind: Literal["manual", "policy"] | None = None,
    active: Annotated[
        bool | None,
        Query(description="true: with commands still waiting or running; false: finished"),
    ] = None,
) -> Paginated[DeploymentOut]:
    """Deployments, newest first, each with its live summary."""
    rows, total = await queries.deployment_page(
        session,
        query=DeploymentQuery(kind=kind, active=active, limit=page.limit, offset=page.offset),
        liveness=state.liveness,
        now=now,
    )
    return Paginated(
        items=[DeploymentOut.of(deployment, summary) for deployment, summary in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/deployments/{deployment_id}", responses=error_responses(404))
async def get_deployment(
    deployment_id: UUID,
    _user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    page: PageDep,
) -> DeploymentDetailOut:
    """A deployment, its summary and its commands (paged)."""
    deployment, summary = await queries.get_deployment(
        session, deployment_id=str(deployment_id), liveness=state.liveness, now=now
    )
    rows, total = await commands.list_commands(
        session, deployment_id=deployment.id, limit=page.limit, offset=page.offset
    )
    return DeploymentDetailOut(
        **DeploymentOut.of(deployment, summary).model_dump(),
        commands=Paginated(
            items=[CommandOut.of(command, hostname) for command, hostname in rows],
            total=total,
            limit=page.limit,
            offset=page.offset,
        ),
    )


@router.post(
    "/deployments/{deployment_id}/retry",
    status_code=201,
    responses=error_responses(403, 404, 409),
)
async def retry_deployment(
    deployment_id: UUID,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> DeploymentRunOut:
    """Retries the failures, in the same deployment: for each device whose latest attempt
    failed, partly succeeded or expired, a command for what it did not install. 409 when
    nothing failed, or no failed device can get a command now."""
    run = await deployments.retry_failed(
        session,
        deployment_id=str(deployment_id),
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    answer = await _run_out(session, state, now, run)
    await work.commit()
    return answer

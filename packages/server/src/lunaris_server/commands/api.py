"""Console JSON API for remote actions: admins create and cancel, everyone logged in reads."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lunaris_protocol import CommandStatus
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_PACKAGES_PER_COMMAND, MAX_SOURCE
from lunaris_protocol.packages import SOURCES
from lunaris_protocol.text import IDENTIFIER
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.commands import service as commands
from lunaris_server.commands.models import Command, CommandResult
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.pagination import PageDep, Paginated
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api", tags=["commands"], responses=error_responses(401, 422))

PackageId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER]


class NewCommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["RUN_UPDATES"]
    packages: (
        Annotated[list[PackageId], Field(min_length=1, max_length=MAX_PACKAGES_PER_COMMAND)] | None
    )
    """The packages to install, or null for every update available when the agent runs it.
    Required, so that "all" is always asked for explicitly."""


class CommandOut(BaseModel):
    id: str
    device_id: str
    hostname: str
    kind: str
    packages: list[str] | None
    versions: dict[str, str] | None = None
    """The version it installs of each package (what the device reported available when it
    was queued); a package it does not name goes to the newest, and so does every package on
    an agent without the ``exact_versions`` capability (see the device's ``capabilities``)."""
    window_ends_at: datetime | None = None
    """A policy's command: no install starts after its maintenance window closes then."""
    status: CommandStatus
    created_by: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    current_package: str | None
    """The package being installed now."""
    message: str
    deployment_id: str | None
    """The deployment it was queued in (commands queued together); null for one device's."""
    retry_of: str | None
    """The command of its deployment whose failures it retries."""

    @classmethod
    def of(cls, command: Command, hostname: str) -> "CommandOut":
        return cls(
            id=command.id,
            device_id=command.device_id,
            hostname=hostname,
            kind=command.kind,
            packages=command.packages,
            versions=command.versions,
            window_ends_at=command.window_ends_at,
            status=CommandStatus(command.status),
            created_by=command.created_by,
            created_at=command.created_at,
            expires_at=command.expires_at,
            sent_at=command.sent_at,
            started_at=command.started_at,
            finished_at=command.finished_at,
            updated_at=command.updated_at,
            current_package=command.current_package,
            message=command.message,
            deployment_id=command.deployment_id,
            retry_of=command.retry_of,
        )


class PackageResultOut(BaseModel):
    package_identifier: str
    outcome: str
    succeeded: bool
    reboot_required: bool
    installer_exit_code: int | None
    hresult: str | None
    message: str
    duration_s: float
    finished_at: datetime

    @classmethod
    def of(cls, result: CommandResult) -> "PackageResultOut":
        return cls.model_validate(result, from_attributes=True)


class CommandDetailOut(CommandOut):
    results: list[PackageResultOut]
    """Each package's outcome, in the order they finished."""


class PackageRunOut(BaseModel):
    package_identifier: str
    source: str | None
    """The source the run was limited to; null for every source."""
    total: int
    """Commands created: one per device waiting for the package."""
    skipped: int
    """Devices waiting for it that got none: an open command of theirs installs it already."""
    skipped_by_rules: int = 0
    """Devices waiting for it that got none: their package rules ignore it, hold it by a pin
    or skip its version."""
    deployment_id: str
    """The deployment the commands make up (``GET /api/deployments/{id}``: its summary)."""
    items: list[CommandOut]


@router.post(
    "/devices/{device_id}/commands",
    status_code=201,
    responses={**BODY_ERRORS, **error_responses(403, 404, 409)},
)
async def create_command(
    device_id: UUID,
    body: NewCommandRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> CommandOut:
    command, hostname = await commands.create_for_device(
        session,
        device_id=str(device_id),
        packages=body.packages,
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    await work.commit()
    return CommandOut.of(command, hostname)


@router.post(
    "/updates/{package:path}/run", status_code=201, responses=error_responses(403, 404, 409)
)
async def run_package(
    package: str,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
    source: Annotated[
        str | None,
        Query(
            max_length=MAX_SOURCE,
            description="only the devices that report the package from this source "
            f"({', '.join(SOURCES)}); every source when absent",
        ),
    ] = None,
) -> PackageRunOut:
    """Installs the package on every device waiting for it (the id URL-encoded, as any path
    segment: ``Notepad++.Notepad++`` is ``Notepad%2B%2B.Notepad%2B%2B`` in a query, but ``+``
    is literal in a path)."""
    created = await commands.create_for_package(
        session,
        package=package,
        source=source,
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    await work.commit()
    return PackageRunOut(
        package_identifier=package,
        source=source,
        total=len(created.created),
        skipped=created.skipped,
        skipped_by_rules=created.skipped_by_rules,
        deployment_id=created.deployment.id,
        items=[CommandOut.of(command, hostname) for command, hostname in created.created],
    )


@router.get("/commands")
async def list_commands(
    _user: CurrentUser,
    session: SessionDep,
    page: PageDep,
    device_id: UUID | None = None,
    deployment_id: UUID | None = None,
    status: Annotated[
        CommandStatus | None,
        Query(
            description="only commands in this status (``partial``: some packages "
            "installed, others not)"
        ),
    ] = None,
) -> Paginated[CommandOut]:
    rows, total = await commands.list_commands(
        session,
        device_id=str(device_id) if device_id else None,
        deployment_id=str(deployment_id) if deployment_id else None,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    return Paginated(
        items=[CommandOut.of(command, hostname) for command, hostname in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/commands/{command_id}", responses=error_responses(404))
async def get_command(
    command_id: UUID, _user: CurrentUser, session: SessionDep
) -> CommandDetailOut:
    detail = await commands.get_command(session, command_id=str(command_id))
    return CommandDetailOut(
        **CommandOut.of(detail.command, detail.hostname).model_dump(),
        results=[PackageResultOut.of(result) for result in detail.results],
    )


@router.post("/commands/{command_id}/cancel", responses=error_responses(403, 404, 409))
async def cancel_command(
    command_id: UUID,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> CommandOut:
    command = await commands.cancel(
        session, command_id=str(command_id), actor=user_actor(request, admin), now=now
    )
    detail = await commands.get_command(session, command_id=command.id)
    await work.commit()
    return CommandOut.of(detail.command, detail.hostname)

"""What every way of queueing commands shares: a new command and a new deployment, the checks
on what they install, and telling every process (after the commit) that commands wait."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Integer, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from lunaris_protocol import CommandStatus, Resync
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_PACKAGES_PER_COMMAND
from lunaris_protocol.packages import is_targetable_id, is_targetable_version
from lunaris_server.audit import service as audit
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.commands.events import announce_change
from lunaris_server.commands.models import Command, Deployment
from lunaris_server.core.errors import InvalidInput
from lunaris_server.realtime import outbox
from lunaris_server.realtime.outbox import announce
from lunaris_server.updates.models import DeviceUpdate

RUN_UPDATES: Final = "RUN_UPDATES"

DeploymentKind = Literal["manual", "policy"]
MANUAL: Final = "manual"

ALL_TRUNCATED: Final = func.min(cast(DeviceUpdate.truncated, Integer))
"""Over a package's rows: 1 when winget cut every one of them short (one intact row is enough
to target the id)."""


RETRYABLE: Final = (
    CommandStatus.FAILED.value,
    CommandStatus.PARTIAL.value,
    CommandStatus.EXPIRED.value,
)
"""What "retry the failed ones" retries: what did not install (a cancelled command was
withdrawn on purpose, or its device revoked)."""


def not_retried() -> ColumnElement[bool]:
    """A deployment's commands that count: those no retry of the deployment replaced (for
    each device, its latest attempt)."""
    retry = aliased(Command)
    return ~exists(select(retry.id).where(retry.retry_of == Command.id))


def new_command(
    *,
    device_id: str,
    packages: list[str] | None,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
    deployment_id: str | None = None,
    retry_of: str | None = None,
    window_ends_at: datetime | None = None,
    kind: str = RUN_UPDATES,
) -> Command:
    """A new command (RUN_UPDATES unless told); :func:`queue` gives it the versions to
    install."""
    return Command(
        id=str(uuid.uuid4()),
        device_id=device_id,
        kind=kind,
        packages=packages,
        status=CommandStatus.QUEUED.value,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        expires_at=now + expires_in,
        last_sequence=0,
        message="",
        deployment_id=deployment_id,
        retry_of=retry_of,
        window_ends_at=window_ends_at,
    )


def new_deployment(
    *,
    title: str,
    packages: list[str] | None,
    actor: audit.Actor,
    now: datetime,
    source: str | None = None,
    selection: dict[str, Any] | None = None,
    kind: DeploymentKind = MANUAL,
) -> Deployment:
    return Deployment(
        id=str(uuid.uuid4()),
        kind=kind,
        title=title[:300],
        packages=packages,
        source=source,
        selection=selection,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        skipped_busy=0,
        skipped_up_to_date=0,
    )


def check_expiry(expires_in: timedelta) -> None:
    if expires_in <= timedelta(0):
        raise InvalidInput("a command's expiry must be in the future")


def check_package_id(package: str) -> None:
    """What the agent can give to ``winget upgrade --id`` (it refuses anything else; the one
    rule both sides apply is ``lunaris_protocol.packages.is_targetable_id``)."""
    if not is_targetable_id(package):
        raise InvalidInput(
            f"{package[:80]!r} cannot be installed by id: a winget id has 1 to "
            f"{MAX_IDENTIFIER} characters, no spaces or invisible characters, does not start "
            "with '-' and was not cut short by winget",
            details={"package": package[:MAX_IDENTIFIER]},
        )


def checked_packages(packages: list[str] | None) -> list[str] | None:
    """The packages a command is to install, each once in the order given, all of them ids
    the agent can install; ``None`` (every update) as it is."""
    if packages is None:
        return None
    packages = list(dict.fromkeys(packages))
    if not 1 <= len(packages) <= MAX_PACKAGES_PER_COMMAND:
        raise InvalidInput(
            f"list 1 to {MAX_PACKAGES_PER_COMMAND} packages, or null for every update"
        )
    for package in packages:
        check_package_id(package)
    return packages


ANNOUNCED_ONE_BY_ONE = 200
"""Up to this many new commands, each is announced; more, and consoles are told to resync."""


async def queue(session: AsyncSession, commands: Sequence[Command], *, now: datetime) -> None:
    """Writes the new commands, announces them to the consoles (each, or for many one resync
    instead of thousands of refreshes) and, once committed, to the processes that hand them
    over."""
    await _pin_versions(session, commands)
    session.add_all(commands)
    await session.flush()
    if len(commands) <= ANNOUNCED_ONE_BY_ONE:
        for command in commands:
            announce_change(session, command, now=now)
    else:
        announce(session, Resync())
    announce_waiting(session, [command.device_id for command in commands])


async def _pin_versions(session: AsyncSession, commands: Sequence[Command]) -> None:
    """Gives each command that lists packages the version of each to install: the one its
    device reports available now (read in the transaction that queues it, so the version a
    rule or a policy decided on). A package whose rows disagree (two sources offering two
    versions) or whose version winget could not be given is left to the newest."""
    listed = [c for c in commands if c.packages and c.versions is None]
    for start in range(0, len(listed), 1000):
        chunk = listed[start : start + 1000]
        wanted = {package for c in chunk for package in c.packages or ()}
        rows = await session.execute(
            select(DeviceUpdate.device_id, DeviceUpdate.package_identifier)
            .add_columns(func.min(DeviceUpdate.available_version))
            .where(
                DeviceUpdate.device_id.in_({c.device_id for c in chunk}),
                DeviceUpdate.package_identifier.in_(wanted),
            )
            .group_by(DeviceUpdate.device_id, DeviceUpdate.package_identifier)
            .having(func.count(func.distinct(DeviceUpdate.available_version)) == 1)
        )
        available: dict[str, dict[str, str]] = {}
        for device_id, package, version in rows:
            if is_targetable_version(version):
                available.setdefault(device_id, {})[package] = version
        for command in chunk:
            on_device = available.get(command.device_id, {})
            versions = {p: on_device[p] for p in command.packages or () if p in on_device}
            command.versions = versions or None


def announce_waiting(session: AsyncSession, device_ids: list[str]) -> None:
    """Once the commands are committed (never before: another process could look for them
    and find nothing), every process learns that these devices have commands waiting, and
    the one holding a device's socket pushes them."""
    if not device_ids:
        return

    async def announce(process: outbox.Process) -> None:
        await process.part(CommandDelivery).announce(device_ids)

    outbox.after_commit(session, announce)

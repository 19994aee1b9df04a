"""Remote actions: create, cancel and list commands, hand them to agents, apply their progress,
expire the ones nobody picked up.

Statuses only move forward: ``queued -> sent -> running -> succeeded | failed``. A command is
``expired`` by the sweeper when no agent started it before ``expires_at``, and ``cancelled``
by an admin while still queued, or when its device is revoked. The server also fails a
running command on its own: when the agent has reported nothing for too long, or when the
device is revoked (its agent can no longer report). All of these are final, and progress
that arrives for them later is recorded (results, history) without bringing them back. Every
change of status, and every package that starts or ends, is announced as ``COMMAND_UPDATED``
after the commit.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Integer, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import (
    CommandStatus,
)
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_PACKAGES_PER_COMMAND
from lunaris_protocol.packages import SOURCES, is_targetable_id
from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.commands.events import announce_change
from lunaris_server.commands.models import Command, CommandResult
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.realtime import outbox
from lunaris_server.updates.models import DeviceUpdate

RUN_UPDATES: Final = "RUN_UPDATES"

OPEN: Final = frozenset(OPEN_STATUSES)

"""The winget sources a per-package run can be limited to."""


_all_truncated = func.min(cast(DeviceUpdate.truncated, Integer))
"""Over a package's rows: 1 when winget cut every one of them short (one intact row is enough
to target the id)."""


@dataclass(frozen=True, slots=True)
class CommandDetail:
    command: Command
    hostname: str
    results: list[CommandResult]


def new_command(
    *,
    device_id: str,
    packages: list[str] | None,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> Command:
    return Command(
        id=str(uuid.uuid4()),
        device_id=device_id,
        kind=RUN_UPDATES,
        packages=packages,
        status=CommandStatus.QUEUED.value,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        expires_at=now + expires_in,
        last_sequence=0,
        message="",
    )


def _check_expiry(expires_in: timedelta) -> None:
    if expires_in <= timedelta(0):
        raise InvalidInput("a command's expiry must be in the future")


def _check_package_id(package: str) -> None:
    """What the agent can give to ``winget upgrade --id`` (it refuses anything else; the one
    rule both sides apply is ``lunaris_protocol.packages.is_targetable_id``)."""
    if not is_targetable_id(package):
        raise InvalidInput(
            f"{package[:80]!r} cannot be installed by id: a winget id has 1 to "
            f"{MAX_IDENTIFIER} characters, no spaces or invisible characters, does not start "
            "with '-' and was not cut short by winget",
            details={"package": package[:MAX_IDENTIFIER]},
        )


async def create_for_device(
    session: AsyncSession,
    *,
    device_id: str,
    packages: list[str] | None,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> tuple[Command, str]:
    """Queues RUN_UPDATES for one device: ``packages`` (each once, in the order given), or
    every update available when the agent runs it (``None``).

    Listed packages must be updates the device reports now, and not ones winget cut short:
    the console only offers those, a typo is refused here instead of failing on the PC hours
    later, and a truncated id could never be given to ``winget upgrade --id``.
    """
    _check_expiry(expires_in)
    device = await devices.get_device(session, device_id=device_id)
    if packages is not None:
        packages = list(dict.fromkeys(packages))
        if not 1 <= len(packages) <= MAX_PACKAGES_PER_COMMAND:
            raise InvalidInput(
                f"list 1 to {MAX_PACKAGES_PER_COMMAND} packages, or null for every update"
            )
        for package in packages:
            _check_package_id(package)
        rows = await session.execute(
            select(DeviceUpdate.package_identifier, _all_truncated)
            .where(
                DeviceUpdate.device_id == device.id,
                DeviceUpdate.package_identifier.in_(packages),
            )
            .group_by(DeviceUpdate.package_identifier)
        )
        waiting: dict[str, bool] = {package: bool(truncated) for package, truncated in rows}
        unknown = [p for p in packages if p not in waiting]
        if unknown:
            raise InvalidInput(
                f"{len(unknown)} of the packages are not updates this device reports: "
                + ", ".join(unknown[:5])
                + (" ..." if len(unknown) > 5 else ""),
                details={"not_waiting": unknown[:100]},
            )
        truncated = [p for p in packages if waiting[p]]
        if truncated:
            raise InvalidInput(
                "winget cut these ids short, so they cannot be installed by id: "
                + ", ".join(truncated[:5]),
                details={"truncated": truncated[:100]},
            )
    if not await overlap.lock_devices(session, [device.id]):
        raise NotFound(f"no device with id {device.id}")  # revoked meanwhile
    covering = (await overlap.open_overlaps(session, [device.id], packages)).get(device.id)
    if covering is not None:
        raise Conflict(
            f"{device.hostname} has an open command ({covering.status}) that installs "
            + ("these updates" if packages is None or covering.packages is None else "it")
            + " already",
            details={"command_id": covering.id},
        )
    command = new_command(
        device_id=device.id, packages=packages, actor=actor, now=now, expires_in=expires_in
    )
    session.add(command)
    await session.flush()
    announce_change(session, command, now=now)
    await audit.record(
        session,
        actor=actor,
        action="command.create",
        target=f"device:{device.id}",
        details={
            "command_id": command.id,
            "hostname": device.hostname,
            "packages": packages[:100] if packages is not None else None,
            "package_count": len(packages) if packages is not None else None,
        },
        now=now,
    )
    announce_waiting(session, [command.device_id])
    return command, device.hostname


async def create_for_package(
    session: AsyncSession,
    *,
    package: str,
    source: str | None = None,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> "PackageRun":
    """One RUN_UPDATES of ``package`` for every listed device that reports it waiting and has
    no open command that installs it already; with ``source``, only the devices that report
    it from that source (the same id can be a different app in another source)."""
    _check_expiry(expires_in)
    _check_package_id(package)
    conditions = [DeviceUpdate.package_identifier == package, Device.revoked_at.is_(None)]
    if source is not None:
        if source not in SOURCES:
            raise InvalidInput(
                f"unknown source {source[:80]!r}: use one of {', '.join(SOURCES)}, or none "
                "for every source",
                details={"source": source[:80], "sources": list(SOURCES)},
            )
        conditions.append(DeviceUpdate.source == source)
    rows = await session.execute(
        select(DeviceUpdate.device_id, Device.hostname, _all_truncated)
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(*conditions)
        .group_by(DeviceUpdate.device_id, Device.hostname)
        .order_by(Device.hostname, DeviceUpdate.device_id)
    )
    waiting = [(device_id, hostname, bool(truncated)) for device_id, hostname, truncated in rows]
    if not waiting:
        from_source = f" from {source}" if source is not None else ""
        raise NotFound(f"no device is waiting for an update of {package}{from_source}")
    if all(truncated for _, _, truncated in waiting):
        raise InvalidInput(
            f"winget cut the id {package} short, so it cannot be installed by id",
            details={"truncated": [package]},
        )
    targets = [(device_id, hostname) for device_id, hostname, truncated in waiting if not truncated]
    locked = await overlap.lock_devices(session, [device_id for device_id, _ in targets])
    targets = [(device_id, hostname) for device_id, hostname in targets if device_id in locked]
    covered = await overlap.open_overlaps(session, [d for d, _ in targets], [package])
    created = [
        (
            new_command(
                device_id=device_id, packages=[package], actor=actor, now=now, expires_in=expires_in
            ),
            hostname,
        )
        for device_id, hostname in targets
        if device_id not in covered
    ]
    if not created:
        raise Conflict(
            f"every device waiting for {package} has an open command that installs it already",
            details={"skipped": len(covered)},
        )
    commands = [command for command, _ in created]
    session.add_all(commands)
    await session.flush()
    for command in commands:
        announce_change(session, command, now=now)
    await audit.record(
        session,
        actor=actor,
        action="command.create_for_package",
        target=f"package:{package}",
        details={
            "package": package,
            "source": source,
            "commands": len(commands),
            "skipped": len(covered),
        },
        now=now,
    )
    announce_waiting(session, [command.device_id for command, _ in created])
    return PackageRun(created, skipped=len(covered))


def announce_waiting(session: AsyncSession, device_ids: list[str]) -> None:
    """Once the commands are committed (never before: another process could look for them
    and find nothing), every process learns that these devices have commands waiting, and
    the one holding a device's socket pushes them."""
    if not device_ids:
        return

    async def announce(process: outbox.Process) -> None:
        await process.part(CommandDelivery).announce(device_ids)

    outbox.after_commit(session, announce)


@dataclass(frozen=True, slots=True)
class PackageRun:
    created: list[tuple[Command, str]]
    """Each new command with its device's hostname."""
    skipped: int
    """Devices left out: an open command of theirs installs the package already."""


async def cancel(
    session: AsyncSession, *, command_id: str, actor: audit.Actor, now: datetime
) -> Command:
    """Withdraws a queued command. One conditional UPDATE: a command handed to an agent at
    the same moment is either cancelled before it went out, or already sent (409)."""
    cancelled = await session.scalar(
        update(Command)
        .where(Command.id == command_id, Command.status == CommandStatus.QUEUED.value)
        .values(
            status=CommandStatus.CANCELLED.value,
            finished_at=now,
            updated_at=now,
            message=f"cancelled by {actor.name}",
        )
        .returning(Command)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if cancelled is None:
        command = await session.get(Command, command_id)
        if command is None:
            raise NotFound(f"no command with id {command_id}")
        raise Conflict(
            f"the command is {command.status}; only a queued command can be cancelled",
            details={"status": command.status},
        )
    announce_change(session, cancelled, now=now)
    await audit.record(
        session,
        actor=actor,
        action="command.cancel",
        target=f"device:{cancelled.device_id}",
        details={"command_id": cancelled.id},
        now=now,
    )
    return cancelled


async def list_commands(
    session: AsyncSession,
    *,
    device_id: str | None = None,
    status: CommandStatus | None = None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Command, str]], int]:
    """Commands newest first, with their device's hostname."""
    conditions = []
    if device_id is not None:
        conditions.append(Command.device_id == device_id)
    if status is not None:
        conditions.append(Command.status == status.value)
    total = await session.scalar(select(func.count()).select_from(Command).where(*conditions))
    rows = await session.execute(
        select(Command, Device.hostname)
        .join(Device, Device.id == Command.device_id)
        .where(*conditions)
        .order_by(Command.created_at.desc(), Command.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(command, hostname) for command, hostname in rows], total or 0


async def get_command(session: AsyncSession, *, command_id: str) -> CommandDetail:
    row = (
        await session.execute(
            select(Command, Device.hostname)
            .join(Device, Device.id == Command.device_id)
            .where(Command.id == command_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no command with id {command_id}")
    command, hostname = row
    results = await session.scalars(
        select(CommandResult)
        .where(CommandResult.command_id == command.id)
        .order_by(CommandResult.finished_at, CommandResult.id)
    )
    return CommandDetail(command=command, hostname=hostname, results=list(results))

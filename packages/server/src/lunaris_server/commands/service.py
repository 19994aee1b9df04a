"""Remote actions: create, cancel and list commands, hand them to agents, apply their progress,
expire the ones nobody picked up.

Statuses only move forward: ``queued -> sent -> running -> succeeded | partial | failed``
(``partial``: some packages were installed, others not). A command is ``expired`` by the
sweeper when no agent started it before ``expires_at``, and ``cancelled`` by an admin while
still queued, or when its device is revoked. The server also fails a running command on its
own: when the agent has reported nothing for too long, or when the device is revoked (its
agent can no longer report). All of these are final, and progress that arrives for them
later is recorded (results, history) without bringing them back. Every change of status,
and every package that starts or ends, is announced as ``COMMAND_UPDATED`` after the commit.
Commands queued for several devices at once make up a deployment (``deployments.py``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import (
    CommandStatus,
)
from lunaris_protocol.packages import SOURCES
from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap
from lunaris_server.commands.events import announce_change
from lunaris_server.commands.models import Command, CommandResult, Deployment
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.commands.queueing import (
    ALL_TRUNCATED,
    RUN_UPDATES,
    check_expiry,
    check_package_id,
    checked_packages,
    new_command,
    new_deployment,
    queue,
)
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import DeviceUpdate

__all__ = ["RUN_UPDATES", "CommandDetail", "PackageRun"]

OPEN: Final = frozenset(OPEN_STATUSES)


@dataclass(frozen=True, slots=True)
class CommandDetail:
    command: Command
    hostname: str
    results: list[CommandResult]


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
    check_expiry(expires_in)
    device = await devices.get_device(session, device_id=device_id)
    packages = checked_packages(packages)
    if packages is not None:
        rows = await session.execute(
            select(DeviceUpdate.package_identifier, ALL_TRUNCATED)
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
    await queue(session, [command], now=now)
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
    check_expiry(expires_in)
    check_package_id(package)
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
        select(DeviceUpdate.device_id, Device.hostname, ALL_TRUNCATED)
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
    # A device whose package rules ignore the update, hold it by a pin or skip its version
    # keeps it: the rules are there to stop exactly such a fleet-wide run.
    held = await rule_store.held_devices(
        session, [d for d, _ in targets], package=package, source=source
    )
    targets = [(device_id, hostname) for device_id, hostname in targets if device_id not in held]
    covered = await overlap.open_overlaps(session, [d for d, _ in targets], [package])
    targets = [(device_id, hostname) for device_id, hostname in targets if device_id not in covered]
    if not targets:
        raise Conflict(
            f"no device waiting for {package} gets a command: {len(covered):,} have an open "
            f"command that installs it already, {len(held):,} keep it by their package rules",
            details={"skipped": len(covered), "skipped_by_rules": len(held)},
        )
    from_source = f" from {source}" if source is not None else ""
    deployment = new_deployment(
        title=f"{package}{from_source} on every device waiting for it",
        packages=[package],
        source=source,
        actor=actor,
        now=now,
    )
    deployment.skipped_busy = len(covered)
    session.add(deployment)
    created = [
        (
            new_command(
                device_id=device_id,
                packages=[package],
                actor=actor,
                now=now,
                expires_in=expires_in,
                deployment_id=deployment.id,
            ),
            hostname,
        )
        for device_id, hostname in targets
    ]
    await queue(session, [command for command, _ in created], now=now)
    await audit.record(
        session,
        actor=actor,
        action="command.create_for_package",
        target=f"package:{package}",
        details={
            "package": package,
            "source": source,
            "deployment_id": deployment.id,
            "commands": len(created),
            "skipped": len(covered),
            "skipped_by_rules": len(held),
        },
        now=now,
    )
    return PackageRun(
        created, skipped=len(covered), skipped_by_rules=len(held), deployment=deployment
    )


@dataclass(frozen=True, slots=True)
class PackageRun:
    created: list[tuple[Command, str]]
    """Each new command with its device's hostname."""
    skipped: int
    """Devices left out: an open command of theirs installs the package already."""
    skipped_by_rules: int
    """Devices left out: their package rules ignore it, hold it by a pin or skip its version."""
    deployment: Deployment
    """The deployment the new commands make up."""


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
    deployment_id: str | None = None,
    status: CommandStatus | None = None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Command, str]], int]:
    """Commands newest first, with their device's hostname."""
    conditions = []
    if device_id is not None:
        conditions.append(Command.device_id == device_id)
    if deployment_id is not None:
        conditions.append(Command.deployment_id == deployment_id)
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

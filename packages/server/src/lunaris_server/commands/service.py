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
from typing import Any, Final

from sqlalchemy import ColumnElement, Integer, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import (
    CommandProgress,
    CommandStatus,
    CommandUpdated,
    CommandUpdatedData,
    PackageResult,
    RunUpdatesCommand,
)
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_MESSAGE, MAX_PACKAGES_PER_COMMAND
from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap
from lunaris_server.commands.models import Command, CommandResult
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.realtime.outbox import announce
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent
from lunaris_server.updates.service import EventKind

RUN_UPDATES: Final = "RUN_UPDATES"

WAITING: Final = (CommandStatus.QUEUED.value, CommandStatus.SENT.value)
"""Handed to the agent (again) until it reports that it started."""
_OPEN: Final = frozenset(OPEN_STATUSES)
_CLOSED_BY_SERVER: Final = frozenset(
    {CommandStatus.EXPIRED, CommandStatus.CANCELLED, CommandStatus.FAILED}
)
"""Final statuses a later step is noted on. ``failed`` is here because the server sets it
too (no progress for too long, device revoked); when the agent reported it, that step was
the command's last, so nothing arrives after it."""

SOURCES: Final = ("winget", "msstore")
"""The winget sources a per-package run can be limited to."""

REVOKED_WAITING: Final = "cancelled: the device was revoked"
REVOKED_RUNNING: Final = (
    "the device was revoked while this command was running; its agent can no longer report"
)

_INT64: Final = range(-(2**63), 2**63)

_all_truncated = func.min(cast(DeviceUpdate.truncated, Integer))
"""Over a package's rows: 1 when winget cut every one of them short (one intact row is enough
to target the id)."""


@dataclass(frozen=True, slots=True)
class CommandDetail:
    command: Command
    hostname: str
    results: list[CommandResult]


def to_wire(command: Command) -> RunUpdatesCommand:
    return RunUpdatesCommand(
        command_id=uuid.UUID(command.id),
        packages=command.packages,
        expires_at=command.expires_at,
    )


def _announce(session: AsyncSession, command: Command, *, now: datetime) -> None:
    command.updated_at = now
    announce(
        session,
        CommandUpdated(
            data=CommandUpdatedData(
                command_id=uuid.UUID(command.id),
                device_id=uuid.UUID(command.device_id),
                status=CommandStatus(command.status),
                updated_at=now,
            )
        ),
    )


def _new_command(
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
    """What the agent can give to ``winget upgrade --id`` (it refuses anything else): an id
    with a space is a local entry winget cannot install, one starting with ``-`` would read
    as an option, and one ending in ``…`` was cut short by winget."""
    if (
        not package
        or len(package) > MAX_IDENTIFIER
        or package.startswith("-")
        or package.endswith("…")
        or any(character.isspace() for character in package)
    ):
        raise InvalidInput(
            f"{package[:80]!r} cannot be installed by id: a winget id has 1 to "
            f"{MAX_IDENTIFIER} characters, no spaces, does not start with '-' and was not "
            "cut short by winget",
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
    command = _new_command(
        device_id=device.id, packages=packages, actor=actor, now=now, expires_in=expires_in
    )
    session.add(command)
    await session.flush()
    _announce(session, command, now=now)
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
            _new_command(
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
        _announce(session, command, now=now)
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
    return PackageRun(created, skipped=len(covered))


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
    _announce(session, cancelled, now=now)
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


async def claim_for_delivery(
    session: AsyncSession, *, device_id: str, now: datetime
) -> list[Command]:
    """The device's commands to hand over now, oldest first: the queued ones are marked sent
    (and announced); sent ones the agent has not started yet go again, since the earlier
    delivery may have been lost and the agent ignores an id it has seen."""
    waiting = list(
        await session.scalars(
            select(Command)
            .where(
                Command.device_id == device_id,
                Command.status.in_(WAITING),
                Command.expires_at > now,
            )
            .order_by(Command.created_at, Command.id)
        )
    )
    queued = [c.id for c in waiting if c.status == CommandStatus.QUEUED.value]
    if not queued:
        return waiting
    # Conditional, so a command cancelled (or started) meanwhile is not handed over as sent.
    claimed = set(
        await session.scalars(
            update(Command)
            .where(Command.id.in_(queued), Command.status == CommandStatus.QUEUED.value)
            .values(status=CommandStatus.SENT.value, sent_at=now, updated_at=now)
            .returning(Command.id)
            .execution_options(synchronize_session=False)
        )
    )
    handed: list[Command] = []
    for command in waiting:
        if command.status == CommandStatus.QUEUED.value:
            if command.id not in claimed:
                continue
            command.status = CommandStatus.SENT.value
            command.sent_at = now
            _announce(session, command, now=now)
        handed.append(command)
    return handed


async def devices_with_waiting_commands(session: AsyncSession, *, now: datetime) -> set[str]:
    rows = await session.scalars(
        select(Command.device_id)
        .where(Command.status.in_(WAITING), Command.expires_at > now)
        .distinct()
    )
    return set(rows)


async def expire_overdue(session: AsyncSession, *, now: datetime) -> list[Command]:
    """Expires queued and sent commands past their time and announces each. One conditional
    UPDATE: of several processes sweeping at once, exactly one expires (and announces) each."""
    return await _close(
        session,
        Command.status.in_(WAITING),
        Command.expires_at <= now,
        status=CommandStatus.EXPIRED,
        message="no agent started this command before it expired",
        now=now,
    )


async def fail_stalled(
    session: AsyncSession, *, now: datetime, quiet_for: timedelta
) -> list[Command]:
    """Fails running commands the agent has reported no step of for ``quiet_for`` (a hung
    installer, a PC that went away mid-run) and announces each. One conditional UPDATE, as
    the expiry: of several processes sweeping at once, exactly one fails each, and a step
    applied meanwhile (it locks the row and moves ``updated_at``) keeps it running."""
    return await _close(
        session,
        Command.status == CommandStatus.RUNNING.value,
        Command.updated_at <= now - quiet_for,
        status=CommandStatus.FAILED,
        message=f"no progress from the agent for {_describe(quiet_for)}",
        now=now,
    )


async def close_for_revoked(
    session: AsyncSession, *, now: datetime, device_id: str | None = None
) -> list[Command]:
    """Closes the open commands of revoked devices (of ``device_id`` only, when given) and
    announces each: queued and sent ones are cancelled, running ones failed, since the
    device's token is refused and its agent can no longer report.

    ``devices.service.revoke`` calls it in the revoking transaction. The sweeper calls it for
    every device, which closes a command created at the moment its device was revoked (that
    transaction did not see the revocation). Conditional UPDATEs, as the cancel and the
    expiry: a command handed over or reported on at the same moment is closed once."""
    conditions: list[ColumnElement[bool]] = [
        Command.device_id.in_(select(Device.id).where(Device.revoked_at.is_not(None)))
    ]
    if device_id is not None:
        conditions.append(Command.device_id == device_id)
    cancelled = await _close(
        session,
        Command.status.in_(WAITING),
        *conditions,
        status=CommandStatus.CANCELLED,
        message=REVOKED_WAITING,
        now=now,
    )
    failed = await _close(
        session,
        Command.status == CommandStatus.RUNNING.value,
        *conditions,
        status=CommandStatus.FAILED,
        message=REVOKED_RUNNING,
        now=now,
    )
    return cancelled + failed


async def _close(
    session: AsyncSession,
    *where: ColumnElement[bool],
    status: CommandStatus,
    message: str,
    now: datetime,
) -> list[Command]:
    """Closes the open commands ``where`` says with ``status`` and announces each. One
    conditional UPDATE: of several processes doing it at once, exactly one closes (and
    announces) each command."""
    closed = list(
        await session.scalars(
            update(Command)
            .where(*where)
            .values(
                status=status.value,
                finished_at=now,
                updated_at=now,
                current_package=None,
                message=message,
            )
            .returning(Command)
            .execution_options(synchronize_session=False)
        )
    )
    for command in closed:
        _announce(session, command, now=now)
    return closed


def _describe(duration: timedelta) -> str:
    """``4 h``, ``90 min``, ``45 s``: the largest unit that states it exactly."""
    seconds = int(duration.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


async def apply_progress(
    session: AsyncSession,
    *,
    device_id: str,
    command_id: str,
    progress: CommandProgress,
    now: datetime,
) -> Command:
    """Applies one step the agent reports, at most once (by ``sequence``).

    A command of another device is unknown here (404), like one that does not exist. The
    status moves forward only; a command the server already closed (expired, cancelled, or
    failed for lack of progress or a revoked device) stays closed, but what the agent did is
    still recorded: results, history, message.
    """
    command = await session.scalar(
        select(Command).where(Command.id == command_id).with_for_update()
    )
    if command is None or command.device_id != device_id:
        raise NotFound(f"no command with id {command_id}")
    if progress.sequence <= command.last_sequence:
        return command  # already applied: acknowledged and ignored
    command.last_sequence = progress.sequence
    command.updated_at = now  # a sign of life: the running timeout counts from the last step
    status = CommandStatus(command.status)
    closed = status in _CLOSED_BY_SERVER
    changed = False
    if progress.package_started is not None:
        await _record_event(
            session,
            command=command,
            package=progress.package_started,
            kind=EventKind.INSTALL_STARTED,
            details=None,
            now=now,
        )
        if status in _OPEN:
            command.current_package = progress.package_started
        changed = True
    if progress.result is not None:
        await _record_result(session, command=command, result=progress.result, now=now)
        if command.current_package == progress.result.package_identifier:
            command.current_package = None
        changed = True

    target = CommandStatus(progress.status)
    if closed:
        if target is not CommandStatus.RUNNING:
            if status is CommandStatus.FAILED:  # keep the server's reason
                note = (
                    f"the agent reported it {target.value} after the server failed it "
                    f"({command.message})"
                )
            else:
                note = f"the agent reported it {target.value} after it was {status.value}"
            if progress.message:
                note += f": {progress.message}"
            command.message = note[:MAX_MESSAGE]
            changed = True
    elif status in _OPEN and target is CommandStatus.RUNNING:
        if status is not CommandStatus.RUNNING:
            command.status = target.value
            command.sent_at = command.sent_at or now
            command.started_at = now
            changed = True
    elif status in _OPEN:  # the last step: succeeded or failed
        command.status = target.value
        command.sent_at = command.sent_at or now
        command.finished_at = now
        command.current_package = None
        command.message = progress.message
        changed = True
    await session.flush()
    if changed:
        _announce(session, command, now=now)
    return command


async def _record_result(
    session: AsyncSession, *, command: Command, result: PackageResult, now: datetime
) -> None:
    exit_code = result.installer_exit_code
    values: dict[str, Any] = {
        "outcome": result.outcome,
        "succeeded": result.succeeded,
        "reboot_required": result.reboot_required,
        "installer_exit_code": exit_code if exit_code is None or exit_code in _INT64 else None,
        "hresult": result.hresult,
        "message": result.message,
        "duration_s": result.duration_s,
        "finished_at": now,
    }
    row = await session.scalar(
        select(CommandResult).where(
            CommandResult.command_id == command.id,
            CommandResult.package_identifier == result.package_identifier,
        )
    )
    if row is None:
        session.add(
            CommandResult(
                command_id=command.id, package_identifier=result.package_identifier, **values
            )
        )
    else:  # the same package installed twice in one command: the last result stands
        for name, value in values.items():
            setattr(row, name, value)
    details = result.model_dump(mode="json", exclude={"package_identifier"})
    kind = EventKind.INSTALL_SUCCEEDED if result.succeeded else EventKind.INSTALL_FAILED
    await _record_event(
        session,
        command=command,
        package=result.package_identifier,
        kind=kind,
        details=details,
        now=now,
    )


async def _record_event(
    session: AsyncSession,
    *,
    command: Command,
    package: str,
    kind: EventKind,
    details: dict[str, Any] | None,
    now: datetime,
) -> None:
    """An ``update_events`` row linked to the command, with the versions the device reported
    for that package (installed -> available), when it reports it."""
    update_row = await session.scalar(
        select(DeviceUpdate)
        .where(
            DeviceUpdate.device_id == command.device_id,
            DeviceUpdate.package_identifier == package,
        )
        .order_by(DeviceUpdate.id)
        .limit(1)
    )
    session.add(
        UpdateEvent(
            device_id=command.device_id,
            package_identifier=package,
            source=update_row.source if update_row else None,
            kind=kind.value,
            from_version=update_row.installed_version if update_row else None,
            to_version=update_row.available_version if update_row else None,
            details=details,
            at=now,
            command_id=command.id,
        )
    )

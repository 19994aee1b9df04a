"""What the agent reports of a command, step by step: applied once each (by ``sequence``),
recorded as results and update history, and announced."""

from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import (
    CommandProgress,
    CommandStatus,
    PackageResult,
)
from lunaris_protocol.limits import MAX_MESSAGE
from lunaris_server.commands.events import announce_change
from lunaris_server.commands.models import Command, CommandResult
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.core.errors import NotFound
from lunaris_server.devices import service as devices
from lunaris_server.updates.models import DeviceUpdate, UpdateEvent
from lunaris_server.updates.service import EventKind

CLOSED_BY_SERVER: Final = frozenset(
    {CommandStatus.EXPIRED, CommandStatus.CANCELLED, CommandStatus.FAILED}
)
"""Final statuses a later step is noted on. ``failed`` is here because the server sets it
too (no progress for too long, device revoked); when the agent reported it, that step was
the command's last, so nothing arrives after it. ``succeeded`` and ``partial`` come only
from the agent's last step: a step after it changes nothing but the record."""

INT64: Final = range(-(2**63), 2**63)


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
    closed = status in CLOSED_BY_SERVER
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
        if status in OPEN_STATUSES:
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
    elif status in OPEN_STATUSES and target is CommandStatus.RUNNING:
        if status is not CommandStatus.RUNNING:
            command.status = target.value
            command.sent_at = command.sent_at or now
            command.started_at = now
            changed = True
    elif status in OPEN_STATUSES:  # the last step: succeeded or failed, or partly
        command.status = (await _final_status(session, command=command, reported=target)).value
        command.sent_at = command.sent_at or now
        command.finished_at = now
        command.current_package = None
        command.message = progress.message
        changed = True
    await session.flush()
    if changed:
        announce_change(session, command, now=now)
    return command


async def _final_status(
    session: AsyncSession, *, command: Command, reported: CommandStatus
) -> CommandStatus:
    """How the command ended, from the agent's last word and each package's result: agents
    say only succeeded or failed, so a command that installed some packages and not others
    is ``partial`` whatever the agent's version. That covers a failed install beside good
    ones, and a run that failed after some installs (an id it could not send, a restart
    midway)."""
    rows = await session.execute(
        select(CommandResult.succeeded, func.count())
        .where(CommandResult.command_id == command.id)
        .group_by(CommandResult.succeeded)
    )
    counts = {bool(succeeded): count for succeeded, count in rows}
    installed, failed = counts.get(True, 0), counts.get(False, 0)
    if installed and (failed or reported is CommandStatus.FAILED):
        return CommandStatus.PARTIAL
    return reported


async def _record_result(
    session: AsyncSession, *, command: Command, result: PackageResult, now: datetime
) -> None:
    exit_code = result.installer_exit_code
    values: dict[str, Any] = {
        "outcome": result.outcome,
        "succeeded": result.succeeded,
        "reboot_required": result.reboot_required,
        "installer_exit_code": exit_code if exit_code is None or exit_code in INT64 else None,
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
    if result.reboot_required:
        await devices.note_reboot_required(session, device_id=command.device_id, now=now)
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

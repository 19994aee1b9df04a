"""Moves the server makes on its own: handing queued commands to an agent (``queued ->
sent``), expiring the ones nobody started, failing the ones whose agent went quiet, closing
those of revoked devices. Each is one conditional UPDATE, so of several processes doing it
at once exactly one moves (and announces) each command."""

import uuid
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import (
    AGENT_PACKAGE,
    AgentCommand,
    CommandStatus,
    RunUpdatesCommand,
    UpdateAgentCommand,
)
from lunaris_server.commands.events import WAITING, announce_change
from lunaris_server.commands.models import Command
from lunaris_server.devices.models import Device

REVOKED_WAITING: Final = "cancelled: the device was revoked"
REVOKED_RUNNING: Final = (
    "the device was revoked while this command was running; its agent can no longer report"
)


UPDATE_AGENT: Final = "UPDATE_AGENT"


def to_wire(command: Command) -> AgentCommand:
    if command.kind == UPDATE_AGENT:
        assert command.versions is not None  # queued with its version, size and hash
        assert command.installer_size_bytes is not None
        assert command.installer_sha256 is not None
        return UpdateAgentCommand(
            command_id=uuid.UUID(command.id),
            version=command.versions[AGENT_PACKAGE],
            size_bytes=command.installer_size_bytes,
            sha256=command.installer_sha256,
            expires_at=command.expires_at,
        )
    return RunUpdatesCommand(
        command_id=uuid.UUID(command.id),
        packages=command.packages,
        expires_at=command.expires_at,
        versions=command.versions,
        window_ends_at=command.window_ends_at,
    )


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
            announce_change(session, command, now=now)
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
        announce_change(session, command, now=now)
    return closed


def _describe(duration: timedelta) -> str:
    """``4 h``, ``90 min``, ``45 s``: the largest unit that states it exactly."""
    seconds = int(duration.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"

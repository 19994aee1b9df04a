"""One open command per package per device: a double click, a second admin or a fleet-wide
run racing a per-device one must not queue a package twice (the second install fails with
"no applicable upgrade", or runs while the first is still running).

A new command is checked against the device's open commands (queued, sent or running) while
the device's row is locked, so two requests (in two server processes, too) that race take
turns: the second sees the first's command. ``FOR NO KEY UPDATE`` on PostgreSQL, as the
revocation takes it: it lets a command's progress write history about the device meanwhile.
SQLite runs one writing transaction at a time anyway.
"""

from collections.abc import Iterable, Mapping

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import CommandStatus
from lunaris_server.commands.models import Command
from lunaris_server.devices.models import Device

OPEN_STATUSES = (CommandStatus.QUEUED.value, CommandStatus.SENT.value, CommandStatus.RUNNING.value)


def still_open() -> ColumnElement[bool]:
    """A command is open: for looking up some devices' commands, beside a condition on the
    device. The status is written as an expression (``status || ''``) so that the database
    finds the rows by device and checks their status, and never reads every open command
    through the status index instead: after a tick queued thousands of commands, and before
    the table's statistics are refreshed, the planner counts few open commands and took
    that index, reading all of them (a second per statement at 100,000 devices)."""
    return Command.status.concat("").in_(OPEN_STATUSES)


async def lock_devices(session: AsyncSession, device_ids: Iterable[str]) -> set[str]:
    """Locks the rows in id order (two fleet-wide runs, and the last-seen writer, lock in the
    same order: no deadlock); returns the ids locked, which leaves out a device revoked
    meanwhile (its revocation held the lock, and is read after it)."""
    ids = sorted(set(device_ids))
    locked: set[str] = set()
    for start in range(0, len(ids), 1000):
        rows = await session.scalars(
            select(Device.id)
            .where(Device.id.in_(ids[start : start + 1000]), Device.revoked_at.is_(None))
            .order_by(Device.id)
            .with_for_update(key_share=True)
        )
        locked.update(rows)
    return locked


async def open_overlaps(
    session: AsyncSession, device_ids: list[str], packages: list[str] | None
) -> dict[str, Command]:
    """For each device with an open command that would install one of ``packages`` too (all
    of them for ``None``; an open "every update" covers every package), that command."""
    return await open_overlaps_each(session, dict.fromkeys(device_ids, packages))


async def open_overlaps_each(
    session: AsyncSession, wanted: Mapping[str, list[str] | None]
) -> dict[str, Command]:
    """As ``open_overlaps``, with the packages each device is to install (a run on a
    selection installs what each device waits for)."""
    device_ids = list(wanted)
    found: dict[str, Command] = {}
    for start in range(0, len(device_ids), 1000):
        rows = await session.scalars(
            select(Command)
            .where(
                Command.device_id.in_(device_ids[start : start + 1000]),
                still_open(),
            )
            .order_by(Command.created_at, Command.id)
        )
        for command in rows:
            device_id = command.device_id
            if device_id not in found and covers(command, wanted[device_id]):
                found[device_id] = command
    return found


async def open_commands(session: AsyncSession, device_ids: list[str]) -> dict[str, list[Command]]:
    """Every open command of these devices (at most 1,000 of them), by device."""
    found: dict[str, list[Command]] = {}
    rows = await session.scalars(
        select(Command).where(Command.device_id.in_(device_ids), still_open())
    )
    for command in rows:
        found.setdefault(command.device_id, []).append(command)
    return found


def covers(command: Command, packages: list[str] | None) -> bool:
    if command.packages is None or packages is None:
        return True
    return not set(command.packages).isdisjoint(packages)

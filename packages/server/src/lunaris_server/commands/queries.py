"""Read queries for the console's command pages: commands newest first with their device and
each package's result, filtered by status and device, paged next to a known place."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import CommandStatus
from lunaris_server.commands.models import Command, CommandResult
from lunaris_server.core.errors import InvalidInput, NotFound
from lunaris_server.db.queries import contains_pattern
from lunaris_server.devices.models import Device

Cursor = tuple[datetime, str]
"""A command's place in the list: its creation time and its id."""

DEVICE_PANEL_SHOWN: Final = 10
"""A device's latest commands on its page; the list page has the rest."""

CANCELLABLE: Final = frozenset({CommandStatus.QUEUED.value})
"""What ``commands.service.cancel`` withdraws: the console offers Cancel for these only."""


@dataclass(frozen=True, slots=True)
class CommandRow:
    command: Command
    hostname: str
    device_listed: bool
    """False once the device was revoked: its page is gone, its commands stay in the list."""
    results: list[CommandResult]
    """Each package's outcome, in the order they finished."""

    @property
    def cancellable(self) -> bool:
        return self.command.status in CANCELLABLE

    @property
    def succeeded(self) -> int:
        return sum(r.succeeded for r in self.results)

    @property
    def failed(self) -> int:
        return sum(not r.succeeded for r in self.results)

    @property
    def reboot_required(self) -> bool:
        return any(r.reboot_required for r in self.results)


@dataclass(frozen=True, slots=True)
class CommandQuery:
    status: CommandStatus | None = None
    device_id: str | None = None
    deployment_id: str | None = None
    hostname: str | None = None
    """Commands of devices whose hostname contains this (case-folded)."""
    limit: int = 50
    offset: int = 0
    after: Cursor | None = None
    """The commands older than this place, instead of skipping ``offset`` rows."""
    before: Cursor | None = None
    """The commands just newer than this place, instead of skipping ``offset`` rows."""


@dataclass(frozen=True, slots=True)
class CommandPage:
    rows: list[CommandRow]
    total: int
    first: Cursor | None
    last: Cursor | None


_Listed = tuple[Command, str, datetime | None]
"""A command, its device's hostname and when the device was revoked."""


def _listed() -> Select[Command, str, datetime | None]:
    return select(Command, Device.hostname, Device.revoked_at).join(
        Device, Device.id == Command.device_id
    )


async def _with_results(session: AsyncSession, rows: Sequence[_Listed]) -> list[CommandRow]:
    """The rows with their results: one query for the whole page."""
    results: dict[str, list[CommandResult]] = defaultdict(list)
    if rows:
        found = await session.scalars(
            select(CommandResult)
            .where(CommandResult.command_id.in_([command.id for command, _, _ in rows]))
            .order_by(CommandResult.finished_at, CommandResult.id)
        )
        for result in found:
            results[result.command_id].append(result)
    return [
        CommandRow(
            command=command,
            hostname=hostname,
            device_listed=revoked_at is None,
            results=results[command.id],
        )
        for command, hostname, revoked_at in rows
    ]


async def command_page(session: AsyncSession, *, query: CommandQuery) -> CommandPage:
    """One page, newest first, by offset or next to a known place (one index seek however
    deep: the list grows with every command and is never pruned)."""
    conditions: list[ColumnElement[bool]] = []
    if query.status is not None:
        conditions.append(Command.status == query.status.value)
    if query.device_id is not None:
        conditions.append(Command.device_id == query.device_id)
    if query.deployment_id is not None:
        conditions.append(Command.deployment_id == query.deployment_id)
    counted = select(func.count()).select_from(Command)
    if query.hostname:
        conditions.append(
            func.lower(Device.hostname).like(contains_pattern(query.hostname), escape="\\")
        )
        counted = counted.join(Device, Device.id == Command.device_id)
    # Without a hostname no join is needed: every command has its device.
    total = await session.scalar(counted.where(*conditions))
    statement = _listed().where(*conditions)

    # "Before" a place reads towards the newer ones from it, then turns the rows around.
    backwards = query.before is not None
    edge = query.after if query.after is not None else query.before
    if edge is not None:
        at, command_id = edge
        if backwards:
            statement = statement.where(
                and_(
                    Command.created_at >= at,
                    or_(Command.created_at > at, Command.id > command_id),
                )
            )
        else:
            statement = statement.where(
                and_(
                    Command.created_at <= at,
                    or_(Command.created_at < at, Command.id < command_id),
                )
            )
    else:
        statement = statement.offset(query.offset)
    order = (Command.created_at, Command.id)
    statement = statement.order_by(*(c.asc() if backwards else c.desc() for c in order))
    rows = list(await session.execute(statement.limit(query.limit)))
    if backwards:
        rows.reverse()
    return CommandPage(
        rows=await _with_results(session, rows),
        total=total or 0,
        first=(rows[0][0].created_at, rows[0][0].id) if rows else None,
        last=(rows[-1][0].created_at, rows[-1][0].id) if rows else None,
    )


async def recent_for_device(session: AsyncSession, *, device_id: str) -> CommandPage:
    return await command_page(
        session, query=CommandQuery(device_id=device_id, limit=DEVICE_PANEL_SHOWN)
    )


async def command_row(session: AsyncSession, *, command_id: str) -> CommandRow:
    row = (await session.execute(_listed().where(Command.id == command_id))).first()
    if row is None:
        raise NotFound(f"no command with id {command_id}")
    return (await _with_results(session, [row]))[0]


def check_cursor(cursor: tuple[object, str]) -> Cursor:
    """A decoded place in the list, refused unless it is one this list made."""
    value, command_id = cursor
    if not isinstance(value, datetime):
        raise InvalidInput("this place in the list does not fit its order")
    return value, command_id

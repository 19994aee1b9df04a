"""The console event every change of a command announces, and the statuses a command waits
in for its agent."""

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import CommandStatus, CommandUpdated, CommandUpdatedData
from lunaris_server.commands.models import Command
from lunaris_server.realtime.outbox import announce

WAITING: Final = (CommandStatus.QUEUED.value, CommandStatus.SENT.value)
"""Handed to the agent (again) until it reports that it started."""


POLICY_ACTOR: Final = "policy:"
"""How a policy's scheduler names itself as the actor of what it queues (``policy:<id>``)."""


def policy_of(command: Command) -> int | None:
    """The policy that queued the command, if its scheduler did."""
    name = command.created_by
    if name.startswith(POLICY_ACTOR) and name[len(POLICY_ACTOR) :].isdigit():
        return int(name[len(POLICY_ACTOR) :])
    return None


def announce_change(session: AsyncSession, command: Command, *, now: datetime) -> None:
    command.updated_at = now
    announce(
        session,
        CommandUpdated(
            data=CommandUpdatedData(
                command_id=uuid.UUID(command.id),
                device_id=uuid.UUID(command.device_id),
                status=CommandStatus(command.status),
                updated_at=now,
                deployment_id=uuid.UUID(command.deployment_id) if command.deployment_id else None,
                policy_id=policy_of(command),
            )
        ),
    )

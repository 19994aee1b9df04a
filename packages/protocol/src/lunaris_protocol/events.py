"""WebSocket messages: every one is ``{"type": ..., "data": {...}}``."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from lunaris_protocol._base import WireReply
from lunaris_protocol.commands import CommandStatus, RunUpdatesCommand, UpdateAgentCommand


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatusData(WireReply):
    device_id: UUID
    hostname: str
    status: DeviceStatus
    last_seen_at: datetime | None
    os_version: str
    agent_version: str


class DeviceUpdatesChangedData(WireReply):
    """What one update report changed on a device. The package lists are left out when long
    (``lists_complete`` false); the counts are always exact."""

    device_id: UUID
    updates_count: int
    added_count: int = 0
    changed_count: int = 0
    removed_count: int = 0
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    lists_complete: bool = True


class DeviceSoftwareChangedData(WireReply):
    """What one inventory report changed on a device (its first list included)."""

    device_id: UUID
    apps: int
    added_count: int = 0
    changed_count: int = 0
    removed_count: int = 0


class CommandUpdatedData(WireReply):
    """A command changed: its status (``partial`` included, see ``CommandStatus``), or a
    package of it started or ended."""

    command_id: UUID
    device_id: UUID
    status: CommandStatus
    updated_at: datetime
    deployment_id: UUID | None = None
    """The deployment the command belongs to (commands queued together: a run on every
    device waiting for a package, a run on a selection of devices, a retry of their
    failures); null for a command queued for one device."""
    policy_id: int | None = None
    """The policy whose scheduler queued it (its rollouts change); null for a person's."""


class PolicyUpdatedData(WireReply):
    policy_id: int


class PolicyUpdated(WireReply):
    """A policy changed (created, edited, deleted) or one of its rollouts did (promoted,
    halted, resumed, moved on by a gate)."""

    type: Literal["POLICY_UPDATED"] = "POLICY_UPDATED"
    data: PolicyUpdatedData


class DeviceStatusUpdate(WireReply):
    type: Literal["DEVICE_STATUS_UPDATE"] = "DEVICE_STATUS_UPDATE"
    data: DeviceStatusData


class DeviceUpdatesChanged(WireReply):
    type: Literal["DEVICE_UPDATES_CHANGED"] = "DEVICE_UPDATES_CHANGED"
    data: DeviceUpdatesChangedData


class DeviceSoftwareChanged(WireReply):
    type: Literal["DEVICE_SOFTWARE_CHANGED"] = "DEVICE_SOFTWARE_CHANGED"
    data: DeviceSoftwareChangedData


class Resync(WireReply):
    """Events were missed (a slow client, a lost bus connection): reload what is shown."""

    type: Literal["RESYNC"] = "RESYNC"
    data: dict[str, str] = Field(default_factory=dict)


class CommandUpdated(WireReply):
    type: Literal["COMMAND_UPDATED"] = "COMMAND_UPDATED"
    data: CommandUpdatedData


class RunUpdatesMessage(WireReply):
    """Server -> agent over ``/ws/agent``."""

    type: Literal["RUN_UPDATES"] = "RUN_UPDATES"
    data: RunUpdatesCommand


class UpdateAgentMessage(WireReply):
    """Server -> agent over ``/ws/agent``, to agents with the ``self_update`` capability."""

    type: Literal["UPDATE_AGENT"] = "UPDATE_AGENT"
    data: UpdateAgentCommand


AgentMessage = Annotated[RunUpdatesMessage | UpdateAgentMessage, Field(discriminator="type")]
"""Any message the server sends on ``/ws/agent``."""

agent_message_adapter: TypeAdapter[AgentMessage] = TypeAdapter(AgentMessage)


ConsoleEvent = Annotated[
    DeviceStatusUpdate
    | DeviceUpdatesChanged
    | DeviceSoftwareChanged
    | CommandUpdated
    | PolicyUpdated
    | Resync,
    Field(discriminator="type"),
]
"""Any message the server sends on ``/ws/console``."""

console_event_adapter: TypeAdapter[ConsoleEvent] = TypeAdapter(ConsoleEvent)

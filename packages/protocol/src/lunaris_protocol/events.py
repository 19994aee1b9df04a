"""WebSocket messages: every one is ``{"type": ..., "data": {...}}``."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from lunaris_protocol._base import WireModel
from lunaris_protocol.commands import RunUpdatesCommand


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class CommandStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class DeviceStatusData(WireModel):
    device_id: UUID
    hostname: str
    status: DeviceStatus
    last_seen_at: datetime | None
    os_version: str
    agent_version: str


class DeviceUpdatesChangedData(WireModel):
    device_id: UUID
    updates_count: int
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class CommandUpdatedData(WireModel):
    command_id: UUID
    device_id: UUID
    status: CommandStatus
    updated_at: datetime


class DeviceStatusUpdate(WireModel):
    type: Literal["DEVICE_STATUS_UPDATE"] = "DEVICE_STATUS_UPDATE"
    data: DeviceStatusData


class DeviceUpdatesChanged(WireModel):
    type: Literal["DEVICE_UPDATES_CHANGED"] = "DEVICE_UPDATES_CHANGED"
    data: DeviceUpdatesChangedData


class CommandUpdated(WireModel):
    type: Literal["COMMAND_UPDATED"] = "COMMAND_UPDATED"
    data: CommandUpdatedData


class RunUpdatesMessage(WireModel):
    """Server -> agent over ``/ws/agent``."""

    type: Literal["RUN_UPDATES"] = "RUN_UPDATES"
    data: RunUpdatesCommand


ConsoleEvent = Annotated[
    DeviceStatusUpdate | DeviceUpdatesChanged | CommandUpdated, Field(discriminator="type")
]
"""Any message the server sends on ``/ws/console``."""

console_event_adapter: TypeAdapter[ConsoleEvent] = TypeAdapter(ConsoleEvent)

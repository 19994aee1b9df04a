"""The Lunaris wire contract: pydantic models for every body agents, server and console
exchange, and the rules both sides apply to what they carry (:mod:`lunaris_protocol.packages`:
which ids winget can target). No I/O; the server and the agent import this and nothing of
each other."""

from lunaris_protocol.agent import (
    Capability,
    HeartbeatRequest,
    HeartbeatResponse,
    NewIdentity,
    RegisterRequest,
    RegisterResponse,
    ScanError,
    UpdateItem,
    UpdateReport,
    UpdateReportResponse,
)
from lunaris_protocol.commands import (
    CommandProgress,
    CommandProgressResponse,
    CommandStatus,
    PackageResult,
    RunUpdatesCommand,
)
from lunaris_protocol.events import (
    CommandUpdated,
    CommandUpdatedData,
    ConsoleEvent,
    DeviceSoftwareChanged,
    DeviceSoftwareChangedData,
    DeviceStatus,
    DeviceStatusData,
    DeviceStatusUpdate,
    DeviceUpdatesChanged,
    DeviceUpdatesChangedData,
    PolicyUpdated,
    PolicyUpdatedData,
    Resync,
    RunUpdatesMessage,
    console_event_adapter,
)
from lunaris_protocol.inventory import (
    InstalledItem,
    InventoryReport,
    InventoryReportResponse,
    list_digest,
)

__all__ = [
    "Capability",
    "CommandProgress",
    "CommandProgressResponse",
    "CommandStatus",
    "CommandUpdated",
    "CommandUpdatedData",
    "ConsoleEvent",
    "DeviceSoftwareChanged",
    "DeviceSoftwareChangedData",
    "DeviceStatus",
    "DeviceStatusData",
    "DeviceStatusUpdate",
    "DeviceUpdatesChanged",
    "DeviceUpdatesChangedData",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "InstalledItem",
    "InventoryReport",
    "InventoryReportResponse",
    "NewIdentity",
    "PackageResult",
    "PolicyUpdated",
    "PolicyUpdatedData",
    "RegisterRequest",
    "RegisterResponse",
    "Resync",
    "RunUpdatesCommand",
    "RunUpdatesMessage",
    "ScanError",
    "UpdateItem",
    "UpdateReport",
    "UpdateReportResponse",
    "console_event_adapter",
    "list_digest",
]

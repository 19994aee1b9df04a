"""Imports every table so ``Base.metadata`` is complete (for Alembic and tests)."""

from lunaris_server.accounts.models import ApiToken, SessionFlash, User, UserSession
from lunaris_server.audit.models import AuditEntry
from lunaris_server.commands.models import Command, CommandResult, Deployment
from lunaris_server.compliance.models import ComplianceDay
from lunaris_server.db.base import Base
from lunaris_server.devices.models import (
    Device,
    DeviceGroup,
    DeviceGroupMember,
    DeviceReenrollment,
    DeviceSplit,
    DeviceTag,
)
from lunaris_server.enrollment.models import EnrollmentSecret
from lunaris_server.policies.models import (
    AgentTarget,
    PackageVersionSeen,
    Policy,
    PolicyInstall,
    PolicyRing,
    Rollout,
    SchedulerTick,
)
from lunaris_server.software.models import (
    DeviceInventory,
    DeviceSoftware,
    SoftwareTitle,
    SoftwareVersion,
)
from lunaris_server.updates.models import (
    DeviceUpdate,
    FleetPackage,
    FleetVariant,
    PackageRule,
    UpdateActivity,
    UpdateEvent,
)

__all__ = [
    "AgentTarget",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Command",
    "CommandResult",
    "ComplianceDay",
    "Deployment",
    "Device",
    "DeviceGroup",
    "DeviceGroupMember",
    "DeviceInventory",
    "DeviceReenrollment",
    "DeviceSoftware",
    "DeviceSplit",
    "DeviceTag",
    "DeviceUpdate",
    "EnrollmentSecret",
    "FleetPackage",
    "FleetVariant",
    "PackageRule",
    "PackageVersionSeen",
    "Policy",
    "PolicyInstall",
    "PolicyRing",
    "Rollout",
    "SchedulerTick",
    "SessionFlash",
    "SoftwareTitle",
    "SoftwareVersion",
    "UpdateActivity",
    "UpdateEvent",
    "User",
    "UserSession",
]

"""``UPDATE_AGENT`` for one device: its agent downloads an agent version's MSI, checks it and
installs it over itself (see docs/agent.md, "Self-update").

Refused: an agent that cannot update itself (no ``self_update`` capability: it would refuse
the whole heartbeat answer that held the command), a version that is not newer than the
device's agent (unless forced: a downgrade or a reinstall is a decision), and a device with
an agent update open already."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import AGENT_PACKAGE, Capability
from lunaris_server.agents.service import AgentVersion
from lunaris_server.audit import service as audit
from lunaris_server.commands import overlap
from lunaris_server.commands.handover import UPDATE_AGENT
from lunaris_server.commands.models import Command
from lunaris_server.commands.queueing import check_expiry, new_command, queue
from lunaris_server.core.errors import Conflict, NotFound
from lunaris_server.core.versions import sort_key
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device


def refusal(device: Device, version: str, *, force: bool) -> str | None:
    """Why this device's agent is not to take ``version`` (None: it may)."""
    if Capability.SELF_UPDATE.value not in device.capabilities:
        return (
            f"the agent on {device.hostname} (version {device.agent_version or 'unknown'}) "
            "cannot update itself: install the new MSI there with your deployment tool"
        )
    if force or not device.agent_version:
        return None
    if sort_key(version) == sort_key(device.agent_version):
        return f"{device.hostname} runs agent {device.agent_version} already (force reinstalls it)"
    if sort_key(version) < sort_key(device.agent_version):
        return (
            f"{version} is older than the agent on {device.hostname} "
            f"({device.agent_version}); force it to downgrade"
        )
    return None


async def queue_agent_update(
    session: AsyncSession,
    *,
    device_id: str,
    version: AgentVersion,
    force: bool,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> tuple[Command, str]:
    check_expiry(expires_in)
    device = await devices.get_device(session, device_id=device_id)
    refused = refusal(device, version.version, force=force)
    if refused is not None:
        raise Conflict(refused, details={"agent_version": device.agent_version})
    if not await overlap.lock_devices(session, [device.id]):
        raise NotFound(f"no device with id {device.id}")  # revoked meanwhile
    open_update = await session.scalar(
        select(Command.id).where(
            Command.device_id == device.id,
            Command.kind == UPDATE_AGENT,
            Command.status.in_(overlap.OPEN_STATUSES),
        )
    )
    if open_update is not None:
        raise Conflict(
            f"{device.hostname} has an agent update open already",
            details={"command_id": open_update},
        )
    command = new_agent_update(device.id, version, actor=actor, now=now, expires_in=expires_in)
    await queue(session, [command], now=now)
    await audit.record(
        session,
        actor=actor,
        action="command.update_agent",
        target=f"device:{device.id}",
        details={
            "command_id": command.id,
            "hostname": device.hostname,
            "from_version": device.agent_version,
            "to_version": version.version,
            "sha256": version.sha256,
            "forced": force,
        },
        now=now,
    )
    return command, device.hostname


def new_agent_update(
    device_id: str,
    version: AgentVersion,
    *,
    actor: audit.Actor,
    now: datetime,
    expires_in: timedelta,
) -> Command:
    """An UPDATE_AGENT command, for ``queueing.queue``."""
    command = new_command(
        device_id=device_id,
        packages=[AGENT_PACKAGE],
        actor=actor,
        now=now,
        expires_in=expires_in,
        kind=UPDATE_AGENT,
    )
    command.versions = {AGENT_PACKAGE: version.version}
    command.installer_size_bytes = version.size_bytes
    command.installer_sha256 = version.sha256
    return command

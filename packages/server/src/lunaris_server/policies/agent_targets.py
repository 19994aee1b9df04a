"""Agent targets: the fleet, or a group, is to run an agent version. Every scheduler tick
(in its transaction, so once across processes) moves devices below their target there with
UPDATE_AGENT, ``at_once`` at a time, and halts a target once ``halt_after_failures`` of its
updates failed (they are not retried on their own: an admin looks, then sets the target
again, which resumes it and counts afresh).

A device follows its group's target if one of its groups has one (the newest, if several),
else the fleet's. Devices without the ``self_update`` capability are left alone (they are
counted: their agents must be replaced by hand once). A target older than a device in its
scope runs is refused unless forced; forced, those devices go back to it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import Capability, CommandStatus
from lunaris_server.agents import service as agents
from lunaris_server.audit import service as audit
from lunaris_server.commands.agent_updates import new_agent_update
from lunaris_server.commands.handover import UPDATE_AGENT
from lunaris_server.commands.models import Command
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.commands.queueing import queue
from lunaris_server.core.errors import Conflict, NotFound
from lunaris_server.core.versions import sort_key
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.policies.models import AgentTarget

log = structlog.get_logger("lunaris.agent_targets")

FAILED = (CommandStatus.FAILED.value, CommandStatus.EXPIRED.value)
FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Progress:
    at_target: int
    waiting: int
    """Below the target (or, forced, above it), able to update themselves."""
    updating: int
    failed: int
    """Updates of this target that failed since it was set."""
    cannot: int
    """Below the target, with agents that cannot update themselves."""


def actor_of(target: AgentTarget) -> audit.Actor:
    return audit.Actor(f"agent_target:{target.id}")


def scope_of(group_id: int | None) -> str:
    return FLEET if group_id is None else f"group:{group_id}"


async def list_targets(session: AsyncSession) -> list[AgentTarget]:
    """The fleet's first, then the groups' by id."""
    rows = await session.scalars(select(AgentTarget))
    return sorted(rows, key=lambda t: (t.group_id is not None, t.group_id or 0))


async def set_target(
    session: AsyncSession,
    *,
    group_id: int | None,
    version: agents.AgentVersion,
    force: bool,
    at_once: int,
    halt_after_failures: int,
    actor: audit.Actor,
    now: datetime,
) -> AgentTarget:
    if group_id is not None and await session.get(DeviceGroup, group_id) is None:
        raise NotFound(f"no group with id {group_id}")
    newer = await _newer_agents(session, group_id, version.version)
    if newer and not force:
        count = sum(newer.values())
        raise Conflict(
            f"{count} device{'s' if count != 1 else ''} in this scope "
            f"{'runs' if count == 1 else 'run'} a newer agent "
            f"({', '.join(sorted(newer, key=sort_key))}); force the target to move them back",
            details={"newer": newer},
        )
    scope = scope_of(group_id)
    target = await session.scalar(select(AgentTarget).where(AgentTarget.scope == scope))
    if target is None:
        target = AgentTarget(scope=scope, group_id=group_id)
        session.add(target)
    target.version = version.version
    target.forced = force
    target.at_once = at_once
    target.halt_after_failures = halt_after_failures
    target.halted_at = None
    target.halt_reason = ""
    target.set_by = actor.name
    target.set_at = now
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="agent_target.set",
        target=scope,
        details={
            "version": version.version,
            "forced": force,
            "at_once": at_once,
            "halt_after_failures": halt_after_failures,
        },
        now=now,
    )
    return target


async def remove_target(
    session: AsyncSession, *, group_id: int | None, actor: audit.Actor, now: datetime
) -> None:
    """Stops moving devices; updates queued already go on."""
    scope = scope_of(group_id)
    removed = await session.execute(delete(AgentTarget).where(AgentTarget.scope == scope))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no agent target for {scope}")
    await audit.record(session, actor=actor, action="agent_target.remove", target=scope, now=now)


async def _newer_agents(
    session: AsyncSession, group_id: int | None, version: str
) -> dict[str, int]:
    """The agent versions newer than ``version`` in the scope, with their device counts."""
    query = (
        select(Device.agent_version, func.count())
        .where(Device.revoked_at.is_(None), Device.agent_version != version)
        .group_by(Device.agent_version)
    )
    if group_id is not None:
        group = await session.get(DeviceGroup, group_id)
        assert group is not None
        query = query.where(member_condition(group))
    rows = await session.execute(query)
    return {found: count for found, count in rows if found and sort_key(found) > sort_key(version)}


async def _members(session: AsyncSession, target: AgentTarget) -> set[str] | None:
    """The ids of a group target's devices (None: the fleet's, every device)."""
    if target.group_id is None:
        return None
    group = await session.get(DeviceGroup, target.group_id)
    if group is None:
        return set()
    rows = await session.scalars(
        select(Device.id).where(Device.revoked_at.is_(None), member_condition(group))
    )
    return set(rows)


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which target each device follows: its groups' (the newest, if several), else the
    fleet's. Only the targeted groups' members are read; every other device is the
    fleet's, so a fleet-wide target costs no read of the whole fleet."""

    by_group: dict[str, AgentTarget]
    fleet: AgentTarget | None

    def of(self, device_id: str) -> AgentTarget | None:
        return self.by_group.get(device_id, self.fleet)


async def assignments(session: AsyncSession, targets: list[AgentTarget]) -> Assignment:
    by_group: dict[str, AgentTarget] = {}
    fleet: AgentTarget | None = None
    for target in targets:
        members = await _members(session, target)
        if members is None:
            fleet = target
            continue
        for device_id in members:
            held = by_group.get(device_id)
            if held is None or sort_key(target.version) > sort_key(held.version):
                by_group[device_id] = target
    return Assignment(by_group, fleet)


def _wants(device: Device, target: AgentTarget) -> bool:
    if device.agent_version == target.version:
        return False
    return (
        target.forced
        or not device.agent_version
        or (sort_key(device.agent_version) < sort_key(target.version))
    )


def can_update_itself(device: Device) -> bool:
    return Capability.SELF_UPDATE.value in device.capabilities


async def tick(session: AsyncSession, *, folder: Path, now: datetime, expires_in: timedelta) -> int:
    """Queues what the targets have due; returns how many updates it queued."""
    targets = await list_targets(session)
    if not targets:
        return 0
    assigned = await assignments(session, targets)
    queued = 0
    for target in targets:
        if target.halted_at is None:
            queued += await _advance(session, target, assigned, folder, now, expires_in)
    return queued


async def _advance(
    session: AsyncSession,
    target: AgentTarget,
    assigned: Assignment,
    folder: Path,
    now: datetime,
    expires_in: timedelta,
) -> int:
    failed = await _count(session, target, FAILED)
    if failed >= target.halt_after_failures:
        await _halt(session, target, f"{failed} updates to {target.version} failed", now=now)
        return 0
    room = target.at_once - await _count(session, target, OPEN_STATUSES)
    if room <= 0:
        return 0
    try:
        version = await agents.get_version(folder, target.version)
    except NotFound:
        reason = f"agent version {target.version} is no longer in the downloads folder"
        await _halt(session, target, reason, now=now)
        return 0
    busy = set(
        await session.scalars(
            select(Command.device_id).where(
                Command.kind == UPDATE_AGENT, Command.status.in_(OPEN_STATUSES)
            )
        )
    )
    # Each device once per setting of the target: a failure waits for an admin, and an
    # update that succeeded is the agent's to report (as the version it now runs).
    tried = set(
        await session.scalars(
            select(Command.device_id).where(*_of(target), Command.status.not_in(OPEN_STATUSES))
        )
    )
    # Only the devices not at the version yet: few, once a rollout is done.
    rows = await session.scalars(
        select(Device)
        .where(
            Device.revoked_at.is_(None),
            Device.agent_version != target.version,
            Device.agent_capabilities.contains(Capability.SELF_UPDATE.value),
        )
        .order_by(Device.id)
    )
    picked = [
        d
        for d in rows
        if assigned.of(d.id) is target
        and d.id not in busy
        and d.id not in tried
        and can_update_itself(d)
        and _wants(d, target)
    ][:room]
    if not picked:
        return 0
    actor = actor_of(target)
    commands = [
        new_agent_update(d.id, version, actor=actor, now=now, expires_in=expires_in) for d in picked
    ]
    await queue(session, commands, now=now)
    await audit.record(
        session,
        actor=actor,
        action="agent_target.queue",
        target=target.scope,
        details={"version": version.version, "devices": len(commands)},
        now=now,
    )
    log.info(
        "agent updates queued", target=target.scope, version=version.version, devices=len(commands)
    )
    return len(commands)


async def _halt(session: AsyncSession, target: AgentTarget, reason: str, *, now: datetime) -> None:
    target.halted_at = now
    target.halt_reason = reason
    await audit.record(
        session,
        actor=actor_of(target),
        action="agent_target.halt",
        target=target.scope,
        details={"version": target.version, "reason": reason},
        now=now,
    )
    log.warning("agent target halted", target=target.scope, reason=reason)


def _of(target: AgentTarget) -> tuple[ColumnElement[bool], ...]:
    """The target's updates since it was set."""
    return (
        Command.created_by == actor_of(target).name,
        Command.kind == UPDATE_AGENT,
        Command.created_at >= target.set_at,
    )


async def _count(session: AsyncSession, target: AgentTarget, statuses: tuple[str, ...]) -> int:
    found = await session.scalar(
        select(func.count()).select_from(Command).where(*_of(target), Command.status.in_(statuses))
    )
    return int(found or 0)


async def progress(session: AsyncSession, targets: list[AgentTarget]) -> dict[int, Progress]:
    """Where each target stands: its devices at the version, waiting, unable, and its
    updates open and failed."""
    assigned = await assignments(session, targets)
    counts: dict[int, list[int]] = {t.id: [0, 0, 0] for t in targets}
    rows = await session.execute(
        select(Device.id, Device.agent_version, Device.agent_capabilities).where(
            Device.revoked_at.is_(None)
        )
    )
    for device_id, agent_version, capabilities in rows:
        target = assigned.of(device_id)
        if target is None:
            continue
        tally = counts[target.id]
        if agent_version == target.version:
            tally[0] += 1
        elif Capability.SELF_UPDATE.value in capabilities.split(","):
            tally[1] += 1
        else:
            tally[2] += 1
    found: dict[int, Progress] = {}
    for target in targets:
        at_target, waiting, cannot = counts[target.id]
        found[target.id] = Progress(
            at_target=at_target,
            waiting=waiting,
            updating=await _count(session, target, OPEN_STATUSES),
            failed=await _count(session, target, FAILED),
            cannot=cannot,
        )
    return found

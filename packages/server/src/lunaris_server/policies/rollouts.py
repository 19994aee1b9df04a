"""Rollouts: each version of a package a policy installs moves through its rings. The first
ring takes a version as soon as it is due; a later ring once the version was promoted to it
(by an admin now, or by the ring gates). A halted version is installed nowhere until resumed.
Every promotion, halt and resumption is audited."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.commands.models import Command, Deployment
from lunaris_server.commands.scheduled import PolicyDeployment
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.policies.events import announce_policy
from lunaris_server.policies.models import Policy, PolicyInstall, PolicyRing, Rollout

Version = tuple[int, str, str, str]
"""(policy id, package id, source or "", version)."""


@dataclass(slots=True)
class RolloutState:
    reached: dict[Version, int] = field(default_factory=dict)
    """The last ring each promoted version may go to."""
    halted: set[Version] = field(default_factory=set)

    def allows(self, version: Version, ring_position: int) -> bool:
        if version in self.halted:
            return False
        return ring_position == 0 or self.reached.get(version, 0) >= ring_position


async def state(session: AsyncSession) -> RolloutState:
    found = RolloutState()
    for rollout in await session.scalars(select(Rollout)):
        key = (rollout.policy_id, rollout.package_identifier, rollout.source, rollout.version)
        found.reached[key] = rollout.ring_position
        if rollout.halted_at is not None:
            found.halted.add(key)
    return found


async def _rollout(
    session: AsyncSession, version: Version, *, now: datetime, actor: audit.Actor
) -> Rollout:
    policy_id, package, source, number = version
    if await session.get(Policy, policy_id) is None:
        raise NotFound(f"no policy with id {policy_id}")
    found = await session.scalar(
        select(Rollout)
        .where(
            Rollout.policy_id == policy_id,
            Rollout.package_identifier == package,
            Rollout.source == source,
            Rollout.version == number,
        )
        .with_for_update()
    )
    if found is None:
        found = Rollout(
            policy_id=policy_id,
            package_identifier=package,
            source=source,
            version=number,
            ring_position=0,
            halted_reason="",
            updated_at=now,
            updated_by=actor.name,
        )
        session.add(found)
    return found


async def _record(
    session: AsyncSession, rollout: Rollout, action: str, *, actor: audit.Actor, now: datetime
) -> Rollout:
    rollout.updated_at, rollout.updated_by = now, actor.name
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=action,
        target=f"policy:{rollout.policy_id}",
        details={
            "package": rollout.package_identifier,
            "source": rollout.source,
            "version": rollout.version,
            "ring": rollout.ring_position,
            "reason": rollout.halted_reason or None,
        },
        now=now,
    )
    announce_policy(session, rollout.policy_id)
    return rollout


async def promote(
    session: AsyncSession, version: Version, *, actor: audit.Actor, now: datetime
) -> Rollout:
    """Lets the next ring take the version now."""
    rollout = await _rollout(session, version, now=now, actor=actor)
    rings = list(
        await session.scalars(select(PolicyRing.position).where(PolicyRing.policy_id == version[0]))
    )
    if rollout.ring_position + 1 > max(rings, default=0):
        raise Conflict("the version has reached the policy's last ring")
    rollout.ring_position += 1
    return await _record(session, rollout, "rollout.promote", actor=actor, now=now)


async def halt(
    session: AsyncSession, version: Version, *, reason: str, actor: audit.Actor, now: datetime
) -> Rollout:
    rollout = await _rollout(session, version, now=now, actor=actor)
    if rollout.halted_at is not None:
        raise Conflict("the rollout of this version is halted already")
    rollout.halted_at, rollout.halted_reason = now, reason
    return await _record(session, rollout, "rollout.halt", actor=actor, now=now)


async def resume(
    session: AsyncSession, version: Version, *, actor: audit.Actor, now: datetime
) -> Rollout:
    rollout = await _rollout(session, version, now=now, actor=actor)
    if rollout.halted_at is None:
        raise Conflict("the rollout of this version is not halted")
    rollout.halted_at, rollout.halted_reason = None, ""
    return await _record(session, rollout, "rollout.resume", actor=actor, now=now)


@dataclass(slots=True)
class RingProgress:
    position: int
    by_status: dict[str, int] = field(default_factory=dict)
    """Devices queued for the version in this ring, by their command's status."""
    deployment_id: str | None = None
    """The deployment the version's commands in this ring joined (None for commands queued
    before policies' commands had deployments)."""

    @property
    def devices(self) -> int:
        return sum(self.by_status.values())


@dataclass(slots=True)
class VersionProgress:
    package_identifier: str
    source: str
    version: str
    reached: int
    halted_reason: str | None
    rings: dict[int, RingProgress] = field(default_factory=dict)


async def progress(session: AsyncSession, *, policy_id: int) -> list[VersionProgress]:
    """Each version the policy installs, ring by ring: how its devices are doing."""
    current = await state(session)
    found: dict[tuple[str, str, str], VersionProgress] = {}
    rows = await session.execute(
        select(
            PolicyInstall.package_identifier,
            PolicyInstall.source,
            PolicyInstall.version,
            PolicyInstall.ring_position,
            func.coalesce(Command.status, "gone"),
            func.count(),
        )
        .outerjoin(Command, Command.id == PolicyInstall.command_id)
        .where(PolicyInstall.policy_id == policy_id)
        .group_by(
            PolicyInstall.package_identifier,
            PolicyInstall.source,
            PolicyInstall.version,
            PolicyInstall.ring_position,
            Command.status,
        )
    )
    for package, source, version, position, status, count in rows:
        key = (policy_id, package, source, version)
        item = found.setdefault(
            (package, source, version),
            VersionProgress(
                package,
                source,
                version,
                reached=current.reached.get(key, 0),
                halted_reason=None,
            ),
        )
        ring = item.rings.setdefault(position, RingProgress(position))
        ring.by_status[status] = ring.by_status.get(status, 0) + count
        ring.deployment_id = PolicyDeployment(policy_id, position, package, source, version).id
    made = set(
        await session.scalars(
            select(Deployment.id).where(
                Deployment.id.in_(
                    sorted({r.deployment_id for v in found.values() for r in v.rings.values()})
                )
            )
        )
    )
    for item in found.values():
        for ring in item.rings.values():
            if ring.deployment_id not in made:
                ring.deployment_id = None
    for rollout in await session.scalars(select(Rollout).where(Rollout.policy_id == policy_id)):
        item = found.setdefault(
            (rollout.package_identifier, rollout.source, rollout.version),
            VersionProgress(
                rollout.package_identifier,
                rollout.source,
                rollout.version,
                reached=rollout.ring_position,
                halted_reason=None,
            ),
        )
        if rollout.halted_at is not None:
            item.halted_reason = rollout.halted_reason or "halted"
    return sorted(found.values(), key=lambda v: (v.package_identifier.lower(), v.version))


async def change(
    session: AsyncSession,
    version: Version,
    action: str,
    *,
    reason: str,
    actor: audit.Actor,
    now: datetime,
) -> Rollout:
    """``promote``, ``halt`` (with ``reason``) or ``resume`` a version's rollout."""
    if action == "promote":
        return await promote(session, version, actor=actor, now=now)
    if action == "halt":
        return await halt(
            session,
            version,
            reason=reason.strip()[:500] or "halted by an admin",
            actor=actor,
            now=now,
        )
    if action == "resume":
        return await resume(session, version, actor=actor, now=now)
    raise InvalidInput("action is promote, halt or resume")


FAILED = ("failed", "expired", "partial")
"""Command statuses that count as a failed install for the gates."""
SCHEDULER = audit.Actor("scheduler")


async def apply_gates(
    session: AsyncSession,
    policies: list[Policy],
    rings: dict[int, list[PolicyRing]],
    *,
    now: datetime,
) -> list[str]:
    """Moves each version on to the next ring whose gate it passed, and halts those whose
    failures in their ring passed its limit; returns what it did, in words (each audited).

    A version passes its ring's gate once the ring has had it for ``soak_hours`` (since its
    first install there), with at least ``min_devices`` done and at least
    ``min_success_percent`` of those done succeeded. It halts when more than
    ``halt_failure_percent`` of the devices done failed (failed, expired or partly failed).
    """
    # Only rollouts that can move or halt: policies with a later ring or a failure limit.
    by_policy = {
        policy.id: policy
        for policy in policies
        if policy.enabled
        and (
            len(rings[policy.id]) > 1
            or any(r.halt_failure_percent is not None for r in rings[policy.id])
        )
    }
    if not by_policy:
        return []
    current = await state(session)
    done: list[str] = []
    rows = await session.execute(
        select(
            PolicyInstall.policy_id,
            PolicyInstall.package_identifier,
            PolicyInstall.source,
            PolicyInstall.version,
            PolicyInstall.ring_position,
            func.min(PolicyInstall.queued_at),
            func.count().filter(Command.status == "succeeded"),
            func.count().filter(Command.status.in_(FAILED)),
        )
        .join(Command, Command.id == PolicyInstall.command_id)
        .where(PolicyInstall.policy_id.in_(list(by_policy)))
        .group_by(
            PolicyInstall.policy_id,
            PolicyInstall.package_identifier,
            PolicyInstall.source,
            PolicyInstall.version,
            PolicyInstall.ring_position,
        )
    )
    for policy_id, package, source, number, position, first, succeeded, failed in rows:
        if policy_id is None:
            continue
        version: Version = (policy_id, package, source, number)
        if version in current.halted or position != current.reached.get(version, 0):
            continue
        ring = next((r for r in rings[policy_id] if r.position == position), None)
        if ring is None:
            continue
        finished = succeeded + failed
        if (
            ring.halt_failure_percent is not None
            and finished
            and failed * 100 > ring.halt_failure_percent * finished
        ):
            reason = (
                f"{failed} of {finished} installs in ring {position + 1} failed, more than "
                f"{ring.halt_failure_percent}%"
            )
            await halt(session, version, reason=reason, actor=SCHEDULER, now=now)
            done.append(f"halted {package} {number}: {reason}")
            continue
        last = max(r.position for r in rings[policy_id])
        if (
            position < last
            and now - first >= timedelta(hours=ring.soak_hours)
            and succeeded >= ring.min_devices
            and finished
            and succeeded * 100 >= ring.min_success_percent * finished
        ):
            await promote(session, version, actor=SCHEDULER, now=now)
            done.append(f"promoted {package} {number} to ring {position + 2}")
    return done

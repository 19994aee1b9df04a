"""What policies would install now: the plan the scheduler queues each tick, and the
preview a policy's page shows for its next window.

For every enrolled device, its policy is the first enabled one (by priority, then id) with a
ring whose group holds the device, and its ring the first such ring of that policy. An update
of the device is due when its package rules decide ``auto`` (updates/rules.py), its version
has been seen in the fleet for the policy's deferral, the device's ring may take it (the
first ring always; later rings once promoted, see policies/rollouts.py), the device has no
open command that installs the package, and the scheduler never queued that version for
the device before (``policy_installs``). The plan then keeps to each policy's and ring's
concurrency: devices installing now (a command sent or running, or queued for a device that
is online) hold a slot; a command waiting for an offline device does not.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.commands.models import Command
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.core.liveness import Liveness
from lunaris_server.db.queries import insert_missing
from lunaris_server.devices import groups as device_groups
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.policies.models import PackageVersionSeen, Policy, PolicyInstall, PolicyRing
from lunaris_server.policies.rollouts import RolloutState
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import DeviceUpdate
from lunaris_server.updates.rules import RuleAction, RuleBook, UpdateState

Place = tuple[int, int]
"""A device's (policy id, ring position)."""


@dataclass(frozen=True, slots=True)
class DueInstall:
    device_id: str
    package_identifier: str
    source: str | None
    version: str
    policy_id: int
    ring_position: int


@dataclass(slots=True)
class Plan:
    installs: list[DueInstall] = field(default_factory=list)
    deferred: int = 0
    """Auto updates not yet due: their version is newer than the policy's deferral."""
    waiting_for_ring: int = 0
    """Auto updates of later rings, waiting for the ring before."""
    halted: int = 0
    """Auto updates whose version's rollout an admin (or a gate) halted."""
    over_capacity: int = 0
    """Due updates left for later: their policy or ring installs on enough devices now."""

    @property
    def devices(self) -> int:
        return len({install.device_id for install in self.installs})

    def by_device(self) -> dict[str, list[DueInstall]]:
        found: dict[str, list[DueInstall]] = defaultdict(list)
        for install in self.installs:
            found[install.device_id].append(install)
        return found


def ring_case(
    policies: list[Policy],
    rings: dict[int, list[PolicyRing]],
    groups: dict[int, DeviceGroup],
    value: Callable[[Policy, PolicyRing], ColumnElement[Any]],
) -> ColumnElement[Any] | None:
    """A column of the devices row: ``value`` of the policy and ring a device takes (the first
    enabled policy, in the order given, with a ring whose group holds it, and its first such
    ring), NULL for a device in none; None when no enabled policy has a ring."""
    whens = [
        (member_condition(groups[ring.group_id]), value(policy, ring))
        for policy in policies
        if policy.enabled
        for ring in rings[policy.id]
    ]
    return case(*whens, else_=None) if whens else None


async def places(
    session: AsyncSession,
    policies: list[Policy],
    rings: dict[int, list[PolicyRing]],
    groups: dict[int, DeviceGroup],
    within: Select[Any],
) -> dict[str, Place]:
    """The policy and ring of each device ``within`` selects (those in no ring are left out):
    the first matching ring in policy order decides. One statement, so the database finds
    each group's tagged devices once, however many devices are placed."""
    column = ring_case(
        policies, rings, groups, lambda policy, ring: literal(f"{policy.id}:{ring.position}")
    )
    if column is None:
        return {}
    place = column.label("place")
    rows = await session.execute(select(Device.id, place).where(Device.revoked_at.is_(None)))
    found: dict[str, Place] = {}
    for device_id, value in rows:
        if value is not None:
            policy_id, position = value.split(":")
            found[device_id] = (int(policy_id), int(position))
    return found


async def _group_members(
    session: AsyncSession, book: RuleBook, groups: dict[int, DeviceGroup], device_ids: set[str]
) -> dict[str, frozenset[int]]:
    """The groups each device is in, among those the rules name."""
    named = sorted({rule.group_id for rule in book.rules if rule.group_id is not None})
    members: dict[str, set[int]] = defaultdict(set)
    for group_id in named:
        rows = await session.scalars(
            select(Device.id).where(Device.revoked_at.is_(None), member_condition(groups[group_id]))
        )
        for device_id in rows:
            if device_id in device_ids:
                members[device_id].add(group_id)
    return {device_id: frozenset(members[device_id]) for device_id in device_ids}


async def first_seen(
    session: AsyncSession, keys: Iterable[tuple[str, str, str]], *, now: datetime, record: bool
) -> dict[tuple[str, str, str], datetime]:
    """When each (package, source, version) was first seen waiting in the fleet; versions
    seen for the first time are recorded as seen ``now`` (when ``record``)."""
    wanted = sorted(set(keys))
    if record:
        await insert_missing(
            session,
            PackageVersionSeen.__table__,  # type: ignore[arg-type]
            [
                {"package_identifier": p, "source": s, "version": v, "first_seen_at": now}
                for p, s, v in wanted
            ],
        )
    found: dict[tuple[str, str, str], datetime] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(
            select(
                PackageVersionSeen.package_identifier,
                PackageVersionSeen.source,
                PackageVersionSeen.version,
                PackageVersionSeen.first_seen_at,
            ).where(
                tuple_(
                    PackageVersionSeen.package_identifier,
                    PackageVersionSeen.source,
                    PackageVersionSeen.version,
                ).in_(chunk)
            )
        )
        for package, source, version, at in rows:
            found[(package, source, version)] = at
    return found


async def plan(
    session: AsyncSession,
    *,
    policies: list[Policy],
    rings: dict[int, list[PolicyRing]],
    due_policies: set[int],
    now: datetime,
    liveness: Liveness,
    rollouts: RolloutState,
    record: bool,
    per_tick: int = 5_000,
) -> Plan:
    """The installs due ``now`` for the policies in ``due_policies`` (those whose window is
    open, or the one previewed). ``rollouts``: how far each version may go, and which are
    halted. ``record``: note versions seen for the first time (the scheduler does; a preview
    changes nothing). ``per_tick``: devices queued at most (the rest wait for the next)."""
    result = Plan()
    book = await rule_store.load_book(session)
    auto = rule_store.packages_named(book, RuleAction.AUTO)
    if auto is None or not due_policies:
        return result
    # The waiting updates an auto rule could decide, leaving out at once (in the database)
    # every version queued for its device before: on most ticks this finds nothing.
    queued_before = (
        select(PolicyInstall.id)
        .where(
            PolicyInstall.device_id == DeviceUpdate.device_id,
            PolicyInstall.package_identifier == DeviceUpdate.package_identifier,
            PolicyInstall.source == func.coalesce(DeviceUpdate.source, ""),
            PolicyInstall.version == DeviceUpdate.available_version,
        )
        .exists()
    )
    waiting = (
        select(
            DeviceUpdate.device_id,
            DeviceUpdate.package_identifier,
            DeviceUpdate.source,
            DeviceUpdate.available_version,
        )
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(
            Device.revoked_at.is_(None),
            DeviceUpdate.truncated.is_(False),
            auto,
            ~queued_before,
        )
    )
    rows = list(
        await session.execute(
            waiting.order_by(DeviceUpdate.device_id, DeviceUpdate.package_identifier)
        )
    )
    if not rows:
        return result
    groups = {g.id: g for g in await session.scalars(select(DeviceGroup))}
    within = waiting.with_only_columns(DeviceUpdate.device_id).distinct()
    placed = await places(session, policies, rings, groups, within)
    placed = {d: p for d, p in placed.items() if p[0] in due_policies}
    rows = [row for row in rows if row.device_id in placed]
    member_of = await _group_members(session, book, groups, {row.device_id for row in rows})
    seen = await first_seen(
        session,
        ((r.package_identifier, r.source or "", r.available_version) for r in rows),
        now=now,
        record=record,
    )
    by_id = {policy.id: policy for policy in policies}
    busy = await _open_packages(session, {row.device_id for row in rows})
    candidates: list[DueInstall] = []
    for row in rows:
        decision = book.decide(
            package=row.package_identifier,
            source=row.source,
            available_version=row.available_version,
            group_ids=member_of.get(row.device_id, frozenset()),
        )
        if decision.state is not UpdateState.AUTO:
            continue
        key = (row.package_identifier, row.source or "", row.available_version)
        if {(row.device_id, row.package_identifier), (row.device_id, "*")} & busy:
            continue
        policy_id, position = placed[row.device_id]
        deferral = timedelta(days=by_id[policy_id].deferral_days)
        if now - seen.get(key, now) < deferral:
            result.deferred += 1
            continue
        if not rollouts.allows((policy_id, *key), position):
            if (policy_id, *key) in rollouts.halted:
                result.halted += 1
            else:
                result.waiting_for_ring += 1
            continue
        candidates.append(
            DueInstall(
                device_id=row.device_id,
                package_identifier=row.package_identifier,
                source=row.source,
                version=row.available_version,
                policy_id=policy_id,
                ring_position=position,
            )
        )
    result.installs = await _within_capacity(
        session,
        candidates,
        by_id,
        rings,
        liveness=liveness,
        now=now,
        plan=result,
        per_tick=per_tick,
    )
    return result


async def _open_packages(session: AsyncSession, device_ids: set[str]) -> set[tuple[str, str]]:
    """(device, package) of every open command; an open "every update" command blocks all
    of its device's packages, written (device, "*")."""
    found: set[tuple[str, str]] = set()
    ids = sorted(device_ids)
    for start in range(0, len(ids), 1000):
        rows = await session.execute(
            select(Command.device_id, Command.packages).where(
                Command.device_id.in_(ids[start : start + 1000]),
                Command.status.in_(OPEN_STATUSES),
            )
        )
        for device_id, packages in rows:
            found.update((device_id, p) for p in packages or ["*"])
    return found


async def _within_capacity(
    session: AsyncSession,
    candidates: list[DueInstall],
    policies: dict[int, Policy],
    rings: dict[int, list[PolicyRing]],
    *,
    liveness: Liveness,
    now: datetime,
    plan: Plan,
    per_tick: int,
) -> list[DueInstall]:
    """The candidates whose devices fit their policy's and ring's concurrency, and at most
    ``per_tick`` devices in all, devices in id order (installs of one device stay
    together)."""
    ring_caps = {(r.policy_id, r.position): r.max_concurrent for rs in rings.values() for r in rs}
    capped = any(p.max_concurrent is not None for p in policies.values()) or any(
        cap is not None for cap in ring_caps.values()
    )
    installing = await _installing(session, liveness=liveness, now=now) if capped else {}
    per_policy: dict[int, set[str]] = defaultdict(set)
    per_ring: dict[Place, set[str]] = defaultdict(set)
    for device_id, place in installing.items():
        per_policy[place[0]].add(device_id)
        per_ring[place].add(device_id)
    kept: list[DueInstall] = []
    devices: set[str] = set()
    for install in candidates:
        place = (install.policy_id, install.ring_position)
        device = install.device_id
        policy_cap = policies[install.policy_id].max_concurrent
        ring_cap = ring_caps.get(place)
        new_device = device not in per_policy[install.policy_id]
        if new_device and (
            (policy_cap is not None and len(per_policy[install.policy_id]) >= policy_cap)
            or (ring_cap is not None and len(per_ring[place]) >= ring_cap)
            or (device not in devices and len(devices) >= per_tick)
        ):
            plan.over_capacity += 1
            continue
        devices.add(device)
        per_policy[install.policy_id].add(device)
        per_ring[place].add(device)
        kept.append(install)
    return kept


async def _installing(
    session: AsyncSession, *, liveness: Liveness, now: datetime
) -> dict[str, Place]:
    """Devices installing under a policy now: its command sent or running, or queued while
    the device is online (it takes the command within a heartbeat)."""
    online = Device.last_seen_at > liveness.cutoff(now)
    rows = await session.execute(
        select(PolicyInstall.device_id, PolicyInstall.policy_id, PolicyInstall.ring_position)
        .join(Command, Command.id == PolicyInstall.command_id)
        .join(Device, Device.id == PolicyInstall.device_id)
        .where(
            PolicyInstall.policy_id.is_not(None),
            or_(
                Command.status.in_(OPEN_STATUSES[1:]),
                (Command.status == OPEN_STATUSES[0]) & online,
            ),
        )
    )
    return {
        device_id: (policy_id, ring) for device_id, policy_id, ring in rows if policy_id is not None
    }


async def device_place(
    session: AsyncSession,
    device_id: str,
    policies: list[Policy],
    rings: dict[int, list[PolicyRing]],
) -> tuple[Policy, PolicyRing] | None:
    """The policy and ring one device takes (its groups, then the first ring in order)."""
    member_of = {m.group.id for m in await device_groups.groups_of(session, device_id=device_id)}
    for policy in policies:
        if not policy.enabled:
            continue
        for ring in rings[policy.id]:
            if ring.group_id in member_of:
                return policy, ring
    return None

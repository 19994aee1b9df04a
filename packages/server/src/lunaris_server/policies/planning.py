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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.commands.models import Command
from lunaris_server.commands.overlap import still_open
from lunaris_server.core.liveness import Liveness
from lunaris_server.db.queries import insert_missing
from lunaris_server.devices import groups as device_groups
from lunaris_server.devices.membership import member_condition
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.policies import waiting
from lunaris_server.policies.capacity import Capacity, DueInstall, Place
from lunaris_server.policies.models import PackageVersionSeen, Policy, PolicyRing
from lunaris_server.policies.rollouts import RolloutState
from lunaris_server.policies.windows import is_zone
from lunaris_server.updates import rule_store
from lunaris_server.updates.rules import RuleAction, RuleBook, UpdateState

MIN_ROWS_PER_PAGE = 1_000
"""Waiting rows read at a time, at least (and twice the installs a tick may queue)."""

Span = tuple[str, str]
"""The first and last device id of a page of devices."""


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
    full: bool = False
    """It stopped reading when it had all the devices and installs a tick may queue (more
    may be due)."""
    zones: dict[str, str] = field(default_factory=dict)
    """For the devices of local-time policies: the zone whose clock their window keeps."""

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
    span: Span,
) -> dict[str, Place]:
    """The policy and ring of each device with an id in ``span`` (those in no ring are left out):
    the first matching ring in policy order decides. One statement, so the database finds
    each group's tagged devices once, however many devices are placed."""
    column = ring_case(
        policies, rings, groups, lambda policy, ring: literal(f"{policy.id}:{ring.position}")
    )
    if column is None:
        return {}
    place = column.label("place")
    rows = await session.execute(
        select(Device.id, place).where(Device.id.between(*span), Device.revoked_at.is_(None))
    )
    found: dict[str, Place] = {}
    for device_id, value in rows:
        if value is not None:
            policy_id, position = value.split(":")
            found[device_id] = (int(policy_id), int(position))
    return found


LocalZones = tuple[frozenset[str], str]
"""A local-time policy's zones with its window open now, and its zone for devices without."""


async def _in_open_zones(
    session: AsyncSession,
    rows: list[Any],
    placed: dict[str, Place],
    local_zones: Mapping[int, LocalZones],
    zones: dict[str, str],
    span: Span,
) -> list[Any]:
    """The rows of devices whose window is open: those of local-time policies only where the
    device's own clock (or its policy's zone, when it reports none it can be read by) has
    it open; ``zones`` learns the zone of each such device kept."""
    rows_of_zones = await session.execute(
        select(Device.id, Device.time_zone).where(Device.id.between(*span))
    )
    reported: dict[str, str | None] = {}
    for device_id, zone in rows_of_zones:
        reported[device_id] = zone
    kept = []
    for row in rows:
        policy_id = placed[row.device_id][0]
        if policy_id not in local_zones:
            kept.append(row)
            continue
        open_zones, fallback = local_zones[policy_id]
        own = reported.get(row.device_id)
        zone = own if own is not None and is_zone(own) else fallback
        if zone in open_zones:
            zones[row.device_id] = zone
            kept.append(row)
    return kept


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
    installs_per_tick: int | None = None,
    until_full: bool = False,
    resume_after: str | None = None,
    backlog: bool = False,
    local_zones: Mapping[int, LocalZones] | None = None,
) -> Plan:
    """The installs due ``now`` for the policies in ``due_policies`` (those whose window is
    open, or the one previewed). ``rollouts``: how far each version may go, and which are
    halted. ``record``: note versions seen for the first time (the scheduler does; a preview
    changes nothing). ``per_tick``: devices queued at most (the rest wait for the next);
    ``installs_per_tick``: about this many installs at most (a device's go together).
    ``until_full``: stop reading once ``per_tick`` devices are taken (the scheduler; its
    plan's counts then cover what it read), where a preview reads everything to count it.
    ``resume_after``: read the devices after this id first, then from the first one (the
    last device the previous tick queued: a backlog is worked through without reading the
    devices queued already again). ``backlog``: the tick before was full, so pages are
    likely full too (see ``waiting.pages``). ``local_zones``: for each local-time policy
    due, the zones whose clocks have its window open now and the zone of devices that report
    none (or one unknown): its devices elsewhere wait for their own window."""
    result = Plan()
    book = await rule_store.load_book(session)
    auto = rule_store.packages_named(book, RuleAction.AUTO)
    if auto is None or not due_policies:
        return result
    groups = {g.id: g for g in await session.scalars(select(DeviceGroup))}
    by_id = {policy.id: policy for policy in policies}
    capacity = await Capacity.read(
        session,
        by_id,
        rings,
        liveness=liveness,
        now=now,
        per_tick=per_tick,
        installs_per_tick=installs_per_tick,
    )
    wanted = min(2 * per_tick, installs_per_tick or 2 * per_tick)  # about two a device
    decide = _Decisions(book)
    seen: dict[tuple[str, str, str], datetime] = {}
    pages = waiting.pages(
        session,
        auto,
        # (a preview counts everything: one page, one pass, as the whole is read anyway)
        rows_per_page=max(MIN_ROWS_PER_PAGE, 2 * wanted) if until_full else None,
        resume_after=resume_after,
        backlog=backlog,
    )
    async for rows in pages:
        span = (rows[0].device_id, rows[-1].device_id)
        placed = await places(session, policies, rings, groups, span)
        rows = [r for r in rows if placed.get(r.device_id, (None,))[0] in due_policies]
        if local_zones:
            rows = await _in_open_zones(session, rows, placed, local_zones, result.zones, span)
        if not rows:
            continue
        member_of = await rule_store.rule_groups(
            session, book, {r.device_id for r in rows}, span=span
        )
        keys = {(r.package_identifier, r.source or "", r.available_version) for r in rows}
        seen |= await first_seen(session, keys - seen.keys(), now=now, record=record)
        busy = await _open_packages(session, span)
        candidates: list[DueInstall] = []
        for row in rows:
            key = (row.package_identifier, row.source or "", row.available_version)
            if not decide.auto(key, row.source, member_of.get(row.device_id, frozenset())):
                continue
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
            package, _, version = key
            due = DueInstall(row.device_id, package, row.source, version, policy_id, position)
            candidates.append(due)
        result.installs += capacity.take(candidates)
        if until_full and capacity.full:
            result.full = True
            break
    result.over_capacity = capacity.over
    return result


class _Decisions:
    """The rules' decisions, each asked once per tick: an update's state depends only on
    its package, source and version and the device's groups that rules name."""

    def __init__(self, book: RuleBook) -> None:
        self._book = book
        self._known: dict[tuple[tuple[str, str, str], str | None, frozenset[int]], bool] = {}

    def auto(
        self, version: tuple[str, str, str], source: str | None, groups: frozenset[int]
    ) -> bool:
        """Whether the rules decide ``auto`` for (package, source or "", version) from
        ``source`` on a device in ``groups``."""
        key = (version, source, groups)
        found = self._known.get(key)
        if found is None:
            package, _, available = version
            decision = self._book.decide(
                package=package, source=source, available_version=available, group_ids=groups
            )
            found = self._known[key] = decision.state is UpdateState.AUTO
        return found


async def _open_packages(session: AsyncSession, span: Span) -> set[tuple[str, str]]:
    """(device, package) of every open command of the devices in ``span``; an open "every
    update" command blocks all of its device's packages, written (device, "*")."""
    found: set[tuple[str, str]] = set()
    rows = await session.execute(
        select(Command.device_id, Command.packages).where(
            Command.device_id.between(*span), still_open()
        )
    )
    for device_id, packages in rows:
        found.update((device_id, p) for p in packages or ["*"])
    return found


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

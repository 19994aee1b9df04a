"""The scheduler: every ``LUNARIS_SCHEDULER_INTERVAL_S`` (60 s), queue what policies have due
(policies/planning.py) for the policies whose window is open, and the agent updates the agent
targets have due (policies/agent_targets.py).

Each tick runs exactly once across server processes and restarts: the tick claims its row in
``scheduler_ticks`` (the tick's number is the time divided by the interval) in the same
transaction that queues its commands. A second process claiming the same tick waits for the
first's commit and then finds the row taken; a tick that failed mid-way (the database went
away, the process died) left no row, and the next tick does its work. And each queued
version has its key in ``policy_installs`` (device, package, source, version): a repeated
tick cannot queue it twice.
"""

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.audit import service as audit
from lunaris_server.commands import scheduled
from lunaris_server.commands.models import Command
from lunaris_server.db.queries import insert_missing
from lunaris_server.devices.models import Device, DeviceGroup
from lunaris_server.policies import agent_targets, planning, rollouts
from lunaris_server.policies import service as policies
from lunaris_server.policies.models import Policy, PolicyInstall, PolicyRing, SchedulerTick
from lunaris_server.policies.windows import closes_at, in_zone, is_open, is_zone
from lunaris_server.realtime import outbox
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.scheduler")


async def _claim(session: AsyncSession, tick: int, *, now: datetime, process: str) -> bool:
    """Inserts the tick's row unless it is there (``ON CONFLICT DO NOTHING``: a process
    claiming it meanwhile makes this wait for its commit, then insert nothing)."""
    row = {"tick": tick, "started_at": now, "process": process, "queued": 0}
    inserted = await insert_missing(session, SchedulerTick.__table__, [row])  # type: ignore[arg-type]
    return inserted == 1


async def tick_once(state: AppState) -> int | None:
    """Runs this tick unless another process (or an earlier run) did; returns the installs
    queued, or None when the tick was not this process's to run."""
    now = state.clock()
    number = int(now.timestamp() // state.settings.scheduler_interval_s)
    async with state.database.session() as session:
        if not await _claim(session, number, now=now, process=state.realtime.bus.process_id):
            await session.rollback()
            return None
        queued, plan = await _queue_due(session, state, now=now)
        queued += await agent_targets.tick(
            session,
            folder=state.settings.resolved_agent_downloads_dir,
            now=now,
            expires_in=state.settings.command_expiry,
        )
        tick = await session.get(SchedulerTick, number)
        assert tick is not None
        tick.queued = queued
        await outbox.commit(session, state)
    if plan is not None:  # (committed: the next tick goes on from here)
        resume = _resume(state)
        resume.backlog = plan.full
        if plan.installs:
            resume.after = plan.installs[-1].device_id
    if queued:
        log.info("scheduler queued installs", installs=queued, tick=number)
    return queued


async def _ring_names(session: AsyncSession, rings: list[PolicyRing]) -> dict[int, str]:
    """Each ring's group's name, by the ring's position."""
    rows = await session.execute(
        select(DeviceGroup.id, DeviceGroup.name).where(
            DeviceGroup.id.in_([r.group_id for r in rings])
        )
    )
    names: dict[int, str] = {}
    for group_id, name in rows:
        names[group_id] = name
    return {r.position: names[r.group_id] for r in rings if r.group_id in names}


@dataclass(slots=True)
class Resume:
    """Where this process's next tick starts reading: after the last device its previous
    tick queued (None: from the first). Only a shortcut: a tick reads every device in the
    end, and one run by another process, or after a restart, starts from the first."""

    after: str | None = None
    backlog: bool = False
    """Whether its previous tick had more due than it could queue."""


def _resume(state: AppState) -> Resume:
    try:
        return state.part(Resume)
    except KeyError:
        state.add(Resume())
        return state.part(Resume)


async def _queue_due(
    session: AsyncSession, state: AppState, *, now: datetime
) -> tuple[int, planning.Plan | None]:
    """Queues what is due; returns the installs queued and the plan (None: no window open)."""
    found = await policies.list_policies(session)
    rings = await policies.rings_of(session, [p.id for p in found])
    for change in await rollouts.apply_gates(session, found, rings, now=now):
        log.info("rollout gate", change=change)
    local_zones = await _local_zones(session, found, now=now)
    open_now = {
        p.id
        for p in found
        if p.enabled and (local_zones[p.id][0] if p.id in local_zones else _open(p, now))
    }
    if not open_now:
        return 0, None
    plan = await planning.plan(
        session,
        policies=found,
        rings=rings,
        due_policies=open_now,
        now=now,
        liveness=state.liveness,
        rollouts=await rollouts.state(session),
        record=True,
        per_tick=state.settings.scheduler_max_devices_per_tick,
        installs_per_tick=state.settings.scheduler_max_installs_per_tick,
        until_full=True,
        resume_after=_resume(state).after,
        backlog=_resume(state).backlog,
        local_zones={k: v for k, v in local_zones.items() if k in open_now},
    )
    by_id = {p.id: p for p in found}
    queued = 0
    for policy_id in sorted({install.policy_id for install in plan.installs}):
        names = await _ring_names(session, rings[policy_id])
        queued += await _queue_for(session, state, by_id[policy_id], plan, names, now=now)
    return queued, plan


def _open(policy: Policy, now: datetime) -> bool:
    return is_open(policies.window_of(policy), now)


async def _local_zones(
    session: AsyncSession, found: list[Policy], *, now: datetime
) -> dict[int, planning.LocalZones]:
    """For each enabled policy whose window keeps each device's own clock: the zones (those
    enrolled devices report, and the policy's own for devices that report none or one the
    zoneinfo database does not know) in which its window is open now."""
    local = [p for p in found if p.enabled and p.local_time and p.window_days is not None]
    if not local:
        return {}
    reported = await session.scalars(
        select(Device.time_zone)
        .where(Device.revoked_at.is_(None), Device.time_zone.is_not(None))
        .distinct()
    )
    known = {zone for zone in reported if zone is not None and is_zone(zone)}
    found_zones: dict[int, planning.LocalZones] = {}
    for policy in local:
        window = policies.window_of(policy)
        zones = known | {policy.time_zone}
        open_in = frozenset(z for z in zones if is_open(in_zone(window, z), now))
        found_zones[policy.id] = (open_in, policy.time_zone)
    return found_zones


async def _queue_for(
    session: AsyncSession,
    state: AppState,
    policy: Policy,
    plan: planning.Plan,
    ring_names: dict[int, str],
    *,
    now: datetime,
) -> int:
    """A command per device and version due (each in the deployment of that version in the
    device's ring), and the versions' keys in ``policy_installs``."""
    installs = [i for i in plan.installs if i.policy_id == policy.id]
    wanted = [
        scheduled.Wanted(
            i.device_id,
            [i.package_identifier],
            scheduled.PolicyDeployment(
                policy.id, i.ring_position, i.package_identifier, i.source, i.version
            ),
        )
        for i in installs
    ]
    window = policies.window_of(policy)
    actor = audit.Actor(f"policy:{policy.id}")
    # One batch per clock the window keeps: the policy's zone, or each device's own.
    by_zone: dict[str, list[scheduled.Wanted]] = {}
    for w in wanted:
        by_zone.setdefault(plan.zones.get(w.device_id, policy.time_zone), []).append(w)
    commands: dict[tuple[str, str], Command] = {}
    closing: list[datetime] = []
    for zone, batch in sorted(by_zone.items()):
        expires_at = closes_at(in_zone(window, zone), now, longest=state.settings.command_expiry)
        closing.append(expires_at)
        commands |= await scheduled.queue(
            session,
            batch,
            actor=actor,
            now=now,
            expires_at=expires_at,
            window_ends_at=None if window.days is None else expires_at,
        )
    joined = {w.deployment for w in wanted if (w.device_id, w.deployment.id) in commands}
    titles = {d: _title(policy, d, ring_names.get(d.ring_position)) for d in joined}
    await scheduled.join_deployments(session, titles, actor=actor, now=now)
    rows = [
        {
            "device_id": w.device_id,
            "package_identifier": i.package_identifier,
            "source": i.source or "",
            "version": i.version,
            "policy_id": policy.id,
            "ring_position": i.ring_position,
            "command_id": command.id,
            "queued_at": now,
        }
        for i, w in zip(installs, wanted, strict=True)
        if (command := commands.get((w.device_id, w.deployment.id))) is not None
    ]
    for start in range(0, len(rows), 5_000):
        await session.execute(insert(PolicyInstall), rows[start : start + 5_000])
    if rows:
        await audit.record(
            session,
            actor=actor,
            action="policy.queue",
            target=f"policy:{policy.id}",
            details={
                "name": policy.name,
                "devices": len({row["device_id"] for row in rows}),
                "installs": len(rows),
                "deployments": sorted(d.id for d in joined),
                "window_closes_at": max(closing).isoformat(),
            },
            now=now,
        )
    return len(rows)


def _title(policy: Policy, deployment: scheduled.PolicyDeployment, ring: str | None) -> str:
    """ "Policy Nightly: Zoom.Zoom 6.1.2, ring 1 (Pilot)"."""
    named = f" ({ring})" if ring else ""
    return (
        f"Policy {policy.name}: {deployment.package} {deployment.version}, "
        f"ring {deployment.ring_position + 1}{named}"
    )

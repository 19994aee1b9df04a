"""Policies kept: their definitions (window, deferral, concurrency, rings), audited."""

from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol.text import DISPLAY_TEXT, MESSAGE_TEXT
from lunaris_server.audit import service as audit
from lunaris_server.core.errors import Conflict, InvalidInput, NotFound
from lunaris_server.core.ids import RowNumber
from lunaris_server.devices import groups
from lunaris_server.policies.events import announce_policy
from lunaris_server.policies.models import Policy, PolicyRing
from lunaris_server.policies.windows import ALWAYS, DAYS, MAX_MINUTES, Window, check_zone

MAX_POLICIES = 200
MAX_RINGS = 10

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Percent = Annotated[int, Field(ge=0, le=100)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]


class WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: Annotated[list[Day], Field(min_length=1, max_length=7)]
    start: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    """``HH:MM`` on the wall clock of the policy's time zone."""
    duration_minutes: Annotated[int, Field(ge=15, le=MAX_MINUTES)]


class RingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_id: RowNumber
    soak_hours: Annotated[int, Field(ge=0, le=24 * 90)] = 0
    """How long this ring has a version before the next ring may take it."""
    min_devices: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """Devices of this ring done with a version before the next ring may take it."""
    min_success_percent: Percent = 0
    halt_failure_percent: Percent | None = None
    """Failures in this ring past this share halt the version's rollout."""
    max_concurrent: Count | None = None


class PolicySpec(BaseModel):
    """A policy as an admin writes it (``POST``/``PUT /api/policies``)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), DISPLAY_TEXT
    ]
    description: Annotated[str, StringConstraints(max_length=1000), MESSAGE_TEXT] = ""
    priority: Annotated[int, Field(ge=0, le=10_000)] = 100
    """Lower first: a device takes the first policy with a ring it is in."""
    enabled: bool = True
    window: WindowSpec | None = None
    """When installs may start; null: at any time."""
    time_zone: Annotated[str, Field(max_length=64)] = "UTC"
    local_time: bool = False
    """The window opens in each device's own time zone, as its agent reports it (a laptop
    that travels takes its window along); ``time_zone`` is for devices that report none."""
    deferral_days: Annotated[int, Field(ge=0, le=365)] = 0
    max_concurrent: Count | None = None
    sla_days: Annotated[int, Field(ge=0, le=365)] | None = None
    """Days an update may wait on a device of this policy before the device is overdue
    (compliance); null: no SLA."""
    rings: Annotated[list[RingSpec], Field(min_length=1, max_length=MAX_RINGS)]

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


def window_of(policy: Policy) -> Window:
    if policy.window_days is None or policy.window_start is None:
        return ALWAYS
    hours, minutes = (int(part) for part in policy.window_start.split(":"))
    return Window(
        days=tuple(policy.window_days),
        start=time(hours, minutes),
        minutes=policy.window_minutes or 0,
        zone=policy.time_zone,
    )


def window_text(policy: Policy) -> str:
    if policy.window_days is None:
        return "at any time"
    days = ", ".join(DAYS[d].capitalize() for d in policy.window_days)
    hours, minutes = divmod(policy.window_minutes or 0, 60)
    length = f"{hours} h" + (f" {minutes} min" if minutes else "")
    if policy.local_time:
        return (
            f"{days} from {policy.window_start} for {length} (each device's local time; "
            f"{policy.time_zone} where it reports none)"
        )
    return f"{days} from {policy.window_start} for {length} ({policy.time_zone})"


async def get_policy(session: AsyncSession, *, policy_id: int) -> Policy:
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise NotFound(f"no policy with id {policy_id}")
    return policy


async def list_policies(session: AsyncSession) -> list[Policy]:
    return list(await session.scalars(select(Policy).order_by(Policy.priority, Policy.id)))


async def rings_of(session: AsyncSession, policy_ids: list[int]) -> dict[int, list[PolicyRing]]:
    rings: dict[int, list[PolicyRing]] = {policy_id: [] for policy_id in policy_ids}
    for ring in await session.scalars(
        select(PolicyRing)
        .where(PolicyRing.policy_id.in_(policy_ids))
        .order_by(PolicyRing.policy_id, PolicyRing.position)
    ):
        rings[ring.policy_id].append(ring)
    return rings


async def _check(session: AsyncSession, spec: PolicySpec, *, policy_id: int | None) -> None:
    same = await session.scalar(
        select(Policy.id).where(func.lower(Policy.name) == spec.name.lower())
    )
    if same is not None and same != policy_id:
        raise Conflict(f"a policy named {spec.name!r} exists already", details={"id": same})
    seen: set[int] = set()
    for ring in spec.rings:
        if ring.group_id in seen:
            raise InvalidInput("a group can be one ring of a policy only")
        seen.add(ring.group_id)
        try:
            await groups.get_group(session, group_id=ring.group_id)
        except NotFound:
            raise InvalidInput(f"no group with id {ring.group_id}") from None


def _apply(policy: Policy, spec: PolicySpec) -> None:
    policy.name = spec.name
    policy.description = spec.description
    policy.priority = spec.priority
    policy.enabled = spec.enabled
    policy.time_zone = spec.time_zone
    policy.local_time = spec.local_time
    policy.deferral_days = spec.deferral_days
    policy.max_concurrent = spec.max_concurrent
    policy.sla_days = spec.sla_days
    if spec.window is None:
        policy.window_days, policy.window_start, policy.window_minutes = None, None, None
    else:
        policy.window_days = sorted({DAYS.index(day) for day in spec.window.days})
        policy.window_start = spec.window.start
        policy.window_minutes = spec.window.duration_minutes


async def _save(
    session: AsyncSession,
    policy: Policy,
    spec: PolicySpec,
    *,
    actor: audit.Actor,
    now: datetime,
    action: str,
) -> Policy:
    _apply(policy, spec)
    policy.updated_at, policy.updated_by = now, actor.name
    session.add(policy)
    await session.flush()
    await session.execute(delete(PolicyRing).where(PolicyRing.policy_id == policy.id))
    session.add_all(
        PolicyRing(policy_id=policy.id, position=position, **ring.model_dump())
        for position, ring in enumerate(spec.rings)
    )
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=action,
        target=f"policy:{policy.id}",
        details=spec.model_dump(mode="json"),
        now=now,
    )
    announce_policy(session, policy.id)
    return policy


async def create_policy(
    session: AsyncSession, *, spec: PolicySpec, actor: audit.Actor, now: datetime
) -> Policy:
    if ((await session.scalar(select(func.count()).select_from(Policy))) or 0) >= MAX_POLICIES:
        raise Conflict(f"there are {MAX_POLICIES} policies already; delete one first")
    await _check(session, spec, policy_id=None)
    policy = Policy(created_at=now, created_by=actor.name)
    return await _save(session, policy, spec, actor=actor, now=now, action="policy.create")


async def update_policy(
    session: AsyncSession, *, policy_id: int, spec: PolicySpec, actor: audit.Actor, now: datetime
) -> Policy:
    """Replaces the policy as a whole (its rings too)."""
    policy = await get_policy(session, policy_id=policy_id)
    await _check(session, spec, policy_id=policy_id)
    return await _save(session, policy, spec, actor=actor, now=now, action="policy.update")


async def delete_policy(
    session: AsyncSession, *, policy_id: int, actor: audit.Actor, now: datetime
) -> None:
    """Deletes the policy; what it queued stays (its commands run or expire as queued)."""
    policy = await get_policy(session, policy_id=policy_id)
    await audit.record(
        session,
        actor=actor,
        action="policy.delete",
        target=f"policy:{policy.id}",
        details={"name": policy.name},
        now=now,
    )
    await session.delete(policy)
    await session.flush()
    announce_policy(session, policy_id)

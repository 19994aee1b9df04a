"""Console JSON API for policies: their definitions, a preview of the next window, the
rollouts of each version through the rings (promote, halt, resume), and a device's policy."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.devices import service as devices
from lunaris_server.policies import planning, rollouts
from lunaris_server.policies import service as policies
from lunaris_server.policies.models import Policy, PolicyRing
from lunaris_server.policies.service import PolicySpec, RingSpec, WindowSpec
from lunaris_server.policies.windows import DAYS
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(tags=["policies"], responses=error_responses(401, 422))


class PolicyOut(PolicySpec):
    id: int
    window_text: str
    """The window in words: "Mon, Tue from 22:00 for 4 h (Europe/Berlin)"."""
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, policy: Policy, rings: list[PolicyRing]) -> "PolicyOut":
        window = None
        if policy.window_days is not None and policy.window_start is not None:
            window = WindowSpec(
                days=[DAYS[d] for d in policy.window_days],
                start=policy.window_start,
                duration_minutes=policy.window_minutes or 0,
            )
        return cls(
            id=policy.id,
            name=policy.name,
            description=policy.description,
            priority=policy.priority,
            enabled=policy.enabled,
            window=window,
            time_zone=policy.time_zone,
            local_time=policy.local_time,
            deferral_days=policy.deferral_days,
            max_concurrent=policy.max_concurrent,
            sla_days=policy.sla_days,
            rings=[RingSpec.model_validate(ring, from_attributes=True) for ring in rings],
            window_text=policies.window_text(policy),
            created_at=policy.created_at,
            created_by=policy.created_by,
            updated_at=policy.updated_at,
            updated_by=policy.updated_by,
        )


async def policy_out(session: AsyncSession, policy: Policy) -> PolicyOut:
    rings = await policies.rings_of(session, [policy.id])
    return PolicyOut.of(policy, rings[policy.id])


class PreviewOut(BaseModel):
    opens_at: datetime | None
    """The window this preview is for (now, when it is open); null for "at any time"."""
    closes_at: datetime | None
    installs: int
    devices: int
    deferred: int
    waiting_for_ring: int
    halted: int
    over_capacity: int
    summary: str


async def preview(
    session: AsyncSession, state: AppState, policy: Policy, now: datetime
) -> PreviewOut:
    """What the policy would install in its next window (or now, when it is open)."""
    window = policies.window_of(policy)
    opens_at, closes_at = (None, None) if window.days is None else window.next_opening(now)
    at = max(now, opens_at) if opens_at is not None else now
    found = await policies.list_policies(session)
    plan = await planning.plan(
        session,
        policies=found,
        rings=await policies.rings_of(session, [p.id for p in found]),
        due_policies={policy.id},
        now=at,
        liveness=state.liveness,
        rollouts=await rollouts.state(session),
        record=False,
    )
    when = (
        "now"
        if opens_at is None or opens_at <= now
        else f"in the window at {opens_at:%Y-%m-%d %H:%M} UTC"
    )
    summary = (
        f"This policy would install {len(plan.installs)} update"
        f"{'s' if len(plan.installs) != 1 else ''} on {plan.devices} device"
        f"{'s' if plan.devices != 1 else ''} {when}"
    )
    return PreviewOut(
        opens_at=opens_at,
        closes_at=closes_at,
        installs=len(plan.installs),
        devices=plan.devices,
        deferred=plan.deferred,
        waiting_for_ring=plan.waiting_for_ring,
        halted=plan.halted,
        over_capacity=plan.over_capacity,
        summary=summary + ".",
    )


@router.get("/api/policies")
async def list_policies(_user: CurrentUser, session: SessionDep) -> list[PolicyOut]:
    found = await policies.list_policies(session)
    rings = await policies.rings_of(session, [p.id for p in found])
    return [PolicyOut.of(p, rings[p.id]) for p in found]


@router.post(
    "/api/policies", status_code=201, responses={**BODY_ERRORS, **error_responses(403, 409)}
)
async def create_policy(
    body: PolicySpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> PolicyOut:
    policy = await policies.create_policy(
        session, spec=body, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return await policy_out(session, policy)


@router.get("/api/policies/{policy_id}", responses=error_responses(404))
async def get_policy(policy_id: RowId, _user: CurrentUser, session: SessionDep) -> PolicyOut:
    return await policy_out(session, await policies.get_policy(session, policy_id=policy_id))


@router.put(
    "/api/policies/{policy_id}", responses={**BODY_ERRORS, **error_responses(403, 404, 409)}
)
async def update_policy(
    policy_id: RowId,
    body: PolicySpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> PolicyOut:
    """Replaces the policy as a whole, its rings too."""
    policy = await policies.update_policy(
        session, policy_id=policy_id, spec=body, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return await policy_out(session, policy)


@router.delete("/api/policies/{policy_id}", status_code=204, responses=error_responses(403, 404))
async def delete_policy(
    policy_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> None:
    await policies.delete_policy(
        session, policy_id=policy_id, actor=user_actor(request, admin), now=now
    )
    await work.commit()


@router.get("/api/policies/{policy_id}/preview", responses=error_responses(404))
async def policy_preview(
    policy_id: RowId, _user: CurrentUser, session: SessionDep, state: StateDep, now: NowDep
) -> PreviewOut:
    policy = await policies.get_policy(session, policy_id=policy_id)
    return await preview(session, state, policy, now)


class RingProgressOut(BaseModel):
    position: int
    devices: int
    by_status: dict[str, int]
    deployment_id: str | None
    """The deployment of this version in this ring (``GET /api/deployments/{id}``): every
    command the policy queued for it here, with its summary and its retry."""


class RolloutOut(BaseModel):
    package_identifier: str
    source: str | None
    version: str
    reached_ring: int
    """The last ring allowed to take this version (0: the first)."""
    halted: str | None
    """Why the rollout is halted, when it is."""
    rings: list[RingProgressOut]


@router.get("/api/policies/{policy_id}/rollouts", responses=error_responses(404))
async def policy_rollouts(
    policy_id: RowId, _user: CurrentUser, session: SessionDep
) -> list[RolloutOut]:
    await policies.get_policy(session, policy_id=policy_id)
    return await rollouts_out(session, policy_id)


async def rollouts_out(session: AsyncSession, policy_id: int) -> list[RolloutOut]:
    return [
        RolloutOut(
            package_identifier=v.package_identifier,
            source=v.source or None,
            version=v.version,
            reached_ring=v.reached,
            halted=v.halted_reason,
            rings=[
                RingProgressOut(
                    position=r.position,
                    devices=r.devices,
                    by_status=r.by_status,
                    deployment_id=r.deployment_id,
                )
                for r in sorted(v.rings.values(), key=lambda r: r.position)
            ],
        )
        for v in await rollouts.progress(session, policy_id=policy_id)
    ]


class RolloutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package_identifier: Annotated[str, Field(min_length=1, max_length=256)]
    source: Annotated[str, Field(max_length=64)] | None = None
    version: Annotated[str, Field(min_length=1, max_length=128)]
    reason: Annotated[str, Field(max_length=500)] = ""
    """Why (for a halt)."""


@router.post(
    "/api/policies/{policy_id}/rollouts/{action}",
    responses={**BODY_ERRORS, **error_responses(403, 404, 409)},
)
async def change_rollout(
    policy_id: RowId,
    action: Literal["promote", "halt", "resume"],
    body: RolloutIn,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> RolloutOut:
    """``promote``: the next ring may take the version now; ``halt`` (with a reason): no
    ring installs it until ``resume``."""
    version = (policy_id, body.package_identifier, body.source or "", body.version)
    await rollouts.change(
        session, version, action, reason=body.reason, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    for item in await rollouts_out(session, policy_id):
        if (item.package_identifier, item.source or "", item.version) == version[1:]:
            return item
    raise AssertionError("the rollout just changed is listed")


class DevicePolicyOut(BaseModel):
    policy_id: int | None
    policy: str | None
    ring: int | None
    reason: str


@router.get("/api/devices/{device_id}/policy", responses=error_responses(404))
async def device_policy(
    device_id: UUID, _user: CurrentUser, session: SessionDep
) -> DevicePolicyOut:
    """The policy and ring the device takes, and why."""
    device = await devices.get_device(session, device_id=str(device_id))
    found = await policies.list_policies(session)
    rings = await policies.rings_of(session, [p.id for p in found])
    place = await planning.device_place(session, device.id, found, rings)
    if place is None:
        return DevicePolicyOut(
            policy_id=None,
            policy=None,
            ring=None,
            reason="no policy: none of its groups is a ring of an enabled policy",
        )
    policy, ring = place
    return DevicePolicyOut(
        policy_id=policy.id,
        policy=policy.name,
        ring=ring.position,
        reason=f"the first enabled policy (priority {policy.priority}) with a ring it is in: "
        f"ring {ring.position + 1}, group #{ring.group_id}",
    )

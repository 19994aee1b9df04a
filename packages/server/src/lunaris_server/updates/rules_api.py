"""Console JSON API for package rules, and how they decide one device's updates."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel

from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.devices import service as devices
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import PackageRule
from lunaris_server.updates.rules import RULE_ORDER, RuleSpec, UpdateState
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(tags=["package rules"], responses=error_responses(401, 422))


class RuleOut(BaseModel):
    id: int
    package: str
    source: str | None
    group_id: int | None
    action: str
    version_constraint: str | None
    skip_version: str | None
    note: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, rule: PackageRule) -> "RuleOut":
        return cls.model_validate(rule, from_attributes=True)


class RuleList(BaseModel):
    items: list[RuleOut]
    order: list[str]
    """Which rule decides, most specific first (see docs/policies.md)."""


class UpdateDecisionOut(BaseModel):
    package_identifier: str
    source: str | None
    installed_version: str
    available_version: str
    state: UpdateState
    rule_id: int | None
    """The rule that decided; null for the default (manual)."""
    reason: str


@router.get("/api/package-rules")
async def list_rules(_user: CurrentUser, session: SessionDep) -> RuleList:
    book = await rule_store.load_book(session)
    return RuleList(items=[RuleOut.of(rule) for rule in book.rules], order=list(RULE_ORDER))


@router.post(
    "/api/package-rules",
    status_code=201,
    responses={**BODY_ERRORS, **error_responses(403, 409)},
)
async def create_rule(
    body: RuleSpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> RuleOut:
    rule = await rule_store.create_rule(
        session, spec=body, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return RuleOut.of(rule)


@router.get("/api/package-rules/{rule_id}", responses=error_responses(404))
async def get_rule(rule_id: RowId, _user: CurrentUser, session: SessionDep) -> RuleOut:
    return RuleOut.of(await rule_store.get_rule(session, rule_id=rule_id))


@router.put(
    "/api/package-rules/{rule_id}", responses={**BODY_ERRORS, **error_responses(403, 404, 409)}
)
async def update_rule(
    rule_id: RowId,
    body: RuleSpec,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> RuleOut:
    """Replaces the rule as a whole."""
    rule = await rule_store.update_rule(
        session, rule_id=rule_id, spec=body, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return RuleOut.of(rule)


@router.delete("/api/package-rules/{rule_id}", status_code=204, responses=error_responses(403, 404))
async def delete_rule(
    rule_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> None:
    await rule_store.delete_rule(
        session, rule_id=rule_id, actor=user_actor(request, admin), now=now
    )
    await work.commit()


@router.get("/api/devices/{device_id}/update-decisions", responses=error_responses(404))
async def device_decisions(
    device_id: UUID, _user: CurrentUser, session: SessionDep
) -> list[UpdateDecisionOut]:
    """Each update the device waits for, its state, and the rule that decided it: why a
    package is, or is not, installed on this PC."""
    device = await devices.get_device(session, device_id=str(device_id))
    updates = await update_queries.device_updates(session, device_id=device.id)
    decisions = await rule_store.device_decisions(session, device_id=device.id, updates=updates)
    out = []
    for u in updates:
        decision = decisions[u.id]
        out.append(
            UpdateDecisionOut(
                package_identifier=u.package_identifier,
                source=u.source,
                installed_version=u.installed_version,
                available_version=u.available_version,
                state=decision.state,
                rule_id=decision.rule.id if decision.rule is not None else None,
                reason=decision.reason,
            )
        )
    return out

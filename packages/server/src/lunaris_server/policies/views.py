"""Console pages for policies: the list, the form an admin fills without reading docs (with
a preview of the next window), and each version's rollout through the rings."""

from datetime import datetime

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.console.deps import CheckedFields, CheckedForm, ConsoleDep
from lunaris_server.console.forms import parsed, saved
from lunaris_server.console.web import Console
from lunaris_server.core.errors import DomainError
from lunaris_server.devices import groups
from lunaris_server.policies import rollouts
from lunaris_server.policies import service as policies
from lunaris_server.policies.api import PolicyOut, preview
from lunaris_server.policies.models import Policy
from lunaris_server.policies.service import MAX_RINGS, PolicySpec
from lunaris_server.policies.windows import DAYS
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

RINGS_SHOWN = 4
LABELS = {
    "name": "Name",
    "priority": "Priority",
    "window": "Window",
    "time_zone": "Time zone",
    "deferral_days": "Wait after release (days)",
    "max_concurrent": "At once",
    "sla_days": "Overdue after (days)",
    "rings": "Rings",
}


def spec_of(fields: list[tuple[str, str]]) -> PolicySpec:
    """The form's fields as the API's policy: days are checkboxes, rings numbered rows (a
    ring without a group is left out)."""
    form = dict(fields)

    def number(name: str) -> str | None:
        return form.get(name, "").strip() or None

    days = [value for name, value in fields if name == "day"]
    window = None
    if form.get("always") != "yes":
        hours = number("duration_hours")
        window = {
            "days": days,
            "start": form.get("start", "").strip(),
            "duration_minutes": int(float(hours) * 60) if hours and _is_number(hours) else hours,
        }
    rings = [
        {
            "group_id": number(f"ring{n}_group"),
            "soak_hours": number(f"ring{n}_soak_hours") or 0,
            "min_devices": number(f"ring{n}_min_devices") or 0,
            "min_success_percent": number(f"ring{n}_min_success") or 0,
            "halt_failure_percent": number(f"ring{n}_halt_failure"),
        }
        for n in range(MAX_RINGS)
        if number(f"ring{n}_group")
    ]
    data: dict[str, object] = {
        "name": form.get("name", ""),
        "description": form.get("description", "").strip(),
        "priority": number("priority") or 100,
        "enabled": form.get("enabled") == "yes",
        "window": window,
        "time_zone": form.get("time_zone", "").strip() or "UTC",
        "local_time": form.get("local_time") == "yes",
        "deferral_days": number("deferral_days") or 0,
        "max_concurrent": number("max_concurrent"),
        "sla_days": number("sla_days"),
        "rings": rings,
    }
    return parsed(PolicySpec, data, LABELS)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _form_of(out: PolicyOut) -> dict[str, object]:
    form: dict[str, object] = {
        "name": out.name,
        "description": out.description,
        "priority": str(out.priority),
        "enabled": "yes" if out.enabled else "",
        "always": "yes" if out.window is None else "",
        "days": list(out.window.days) if out.window else [],
        "start": out.window.start if out.window else "",
        "duration_hours": f"{out.window.duration_minutes / 60:g}" if out.window else "",
        "time_zone": out.time_zone,
        "local_time": "yes" if out.local_time else "",
        "deferral_days": str(out.deferral_days),
        "max_concurrent": str(out.max_concurrent or ""),
        "sla_days": "" if out.sla_days is None else str(out.sla_days),
    }
    for n, ring in enumerate(out.rings):
        form |= {
            f"ring{n}_group": str(ring.group_id),
            f"ring{n}_soak_hours": str(ring.soak_hours),
            f"ring{n}_min_devices": str(ring.min_devices),
            f"ring{n}_min_success": str(ring.min_success_percent),
            f"ring{n}_halt_failure": str(ring.halt_failure_percent or ""),
        }
    return form


def _form_entered(fields: list[tuple[str, str]]) -> dict[str, object]:
    form: dict[str, object] = dict(fields)
    form["days"] = [value for name, value in fields if name == "day"]
    return form


async def _context(
    session: AsyncSession, state: AppState, now: datetime, policy: Policy | None
) -> dict[str, object]:
    """What the pages and their live fragments show: every policy, and one's rollouts."""
    found = await policies.list_policies(session)
    rings = await policies.rings_of(session, [p.id for p in found])
    context: dict[str, object] = {
        "policies": found,
        "outs": {p.id: PolicyOut.of(p, rings[p.id]) for p in found},
        "groups": {g.id: g for g in await groups.list_groups(session)},
        "policy": policy,
    }
    if policy is not None:
        context |= {
            "preview": await preview(session, state, policy, now),
            "rollouts": await rollouts.progress(session, policy_id=policy.id),
        }
    return context


async def _page(
    request: Request,
    console: Console,
    session: AsyncSession,
    state: AppState,
    now: datetime,
    policy: Policy | None = None,
    *,
    form: dict[str, object] | None = None,
    refused: DomainError | None = None,
) -> Response:
    context = await _context(session, state, now, policy)
    context |= {
        "days": DAYS,
        "rings_shown": range(RINGS_SHOWN),
        "error": refused.message if refused else None,
    }
    if policy is None:
        context["form"] = form or {"enabled": "yes", "always": "", "priority": "100"}
        template = "pages/policies/list.html"
    else:
        outs = context["outs"]
        assert isinstance(outs, dict)
        context["form"] = form or _form_of(outs[policy.id])
        template = "pages/policies/detail.html"
    status = refused.status_code if refused else 200
    return console.render(request, template, context, status_code=status)


@router.get("/policies")
async def policies_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    return await _page(request, console, session, state, now)


@router.get("/policies/fragments/table")
async def policies_table(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """The list of policies, for the live refresh."""
    context = await _context(session, state, now, None)
    return console.render(request, "partials/policies/table.html", context)


@router.post("/policies")
async def create_policy(
    request: Request,
    fields: CheckedFields,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    async def attempt() -> Policy:
        spec = spec_of(fields)
        return await policies.create_policy(
            session, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda policy: f"/policies/{policy.id}",
        refused=lambda error: _page(
            request, console, session, state, now, form=_form_entered(fields), refused=error
        ),
    )


@router.get("/policies/{policy_id}")
async def policy_page(
    policy_id: RowId,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    policy = await policies.get_policy(session, policy_id=policy_id)
    return await _page(request, console, session, state, now, policy)


@router.get("/policies/{policy_id}/live")
async def policy_live(
    policy_id: RowId,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """A policy's preview and rollouts, for the live refresh."""
    policy = await policies.get_policy(session, policy_id=policy_id)
    context = await _context(session, state, now, policy)
    return console.render(request, "partials/policies/live.html", context)


@router.post("/policies/{policy_id}")
async def update_policy(
    policy_id: RowId,
    request: Request,
    fields: CheckedFields,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    policy = await policies.get_policy(session, policy_id=policy_id)

    async def attempt() -> Policy:
        spec = spec_of(fields)
        return await policies.update_policy(
            session, policy_id=policy_id, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda changed: f"/policies/{changed.id}",
        refused=lambda error: _page(
            request,
            console,
            session,
            state,
            now,
            policy,
            form=_form_entered(fields),
            refused=error,
        ),
    )


@router.post("/policies/{policy_id}/delete")
async def delete_policy(
    policy_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await policies.delete_policy(
        session, policy_id=policy_id, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return RedirectResponse("/policies", status_code=303)


@router.post("/policies/{policy_id}/rollouts")
async def change_rollout(
    policy_id: RowId,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    """Promote, halt or resume one version's rollout (``action``, ``package``, ``source``,
    ``version``, and for a halt a ``reason``)."""
    await policies.get_policy(session, policy_id=policy_id)
    version = (policy_id, form.get("package", ""), form.get("source", ""), form.get("version", ""))
    await rollouts.change(
        session,
        version,
        form.get("action", ""),
        reason=form.get("reason", ""),
        actor=user_actor(request, admin),
        now=now,
    )
    await work.commit()
    return RedirectResponse(f"/policies/{policy_id}#rollouts", status_code=303)

"""Console pages for deployments: the list, one deployment (its live summary and its
commands), running updates on the devices ticked in the device list, and retrying failures.
The forms call the same service functions as the JSON API; viewers see no forms and are
refused anyway."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.commands import deployment_queries, deployments, queries
from lunaris_server.commands.deployment_queries import DeploymentQuery
from lunaris_server.commands.queries import CommandQuery
from lunaris_server.commands.views import canonical_id
from lunaris_server.console.deps import CheckedFields, ConsoleDep
from lunaris_server.console.htmx import refusal_for_fragment, wants_fragment
from lunaris_server.console.paging import PER_PAGE, Pager, decode_cursor
from lunaris_server.core.errors import DomainError
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.views import selection_of_form
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.state import AppState
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

YesNo = Literal["yes", "no", ""]


def _canonical_id(text: str) -> str:
    return canonical_id(text, "deployment")


@router.get("/deployments")
async def deployments_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    kind: Literal["manual", "policy", ""] = "",
    active: YesNo = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    query = DeploymentQuery(
        kind=kind or None,
        active={"yes": True, "no": False}.get(active),
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    rows, total = await deployment_queries.deployment_page(
        session, query=query, liveness=state.liveness, now=now
    )
    context = {
        "rows": rows,
        "pager": Pager(page, PER_PAGE, total),
        "filters": request.query_params,
        "filtered": bool(kind or active),
    }
    template = (
        "partials/deployments/table.html"
        if wants_fragment(request)
        else "pages/deployments/list.html"
    )
    return console.render(request, template, context)


async def _summary(session: AsyncSession, state: AppState, deployment_id: str) -> dict[str, Any]:
    """The deployment and its summary, as every piece of its page shows them."""
    deployment, summary = await deployment_queries.get_deployment(
        session, deployment_id=deployment_id, liveness=state.liveness, now=state.clock()
    )
    return {"deployment": deployment, "summary": summary}


@router.get("/deployments/{deployment_id}")
async def deployment_page(
    deployment_id: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    after: Annotated[str, Query(max_length=1024)] = "",
    before: Annotated[str, Query(max_length=1024)] = "",
) -> Response:
    """The deployment's summary and its commands; to htmx (a page of them, a live refresh),
    the commands' table only."""
    context = await _summary(session, state, _canonical_id(deployment_id))
    query = CommandQuery(
        deployment_id=context["deployment"].id,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
        after=queries.check_cursor(decode_cursor(after)) if after else None,
        before=queries.check_cursor(decode_cursor(before)) if before and not after else None,
    )
    found = await queries.command_page(session, query=query)
    context["rows"] = found.rows
    context["pager"] = Pager.seeking(
        offset=query.offset, total=found.total, first=found.first, last=found.last
    )
    template = (
        "partials/deployments/commands.html"
        if wants_fragment(request)
        else "pages/deployments/detail.html"
    )
    return console.render(request, template, context)


@router.get("/deployments/{deployment_id}/{fragment}")
async def deployment_fragment(
    deployment_id: str,
    fragment: Literal["summary", "row"],
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
) -> Response:
    """The summary, or the deployment's row in the list: for the live refresh after an
    event about one of its commands."""
    context = await _summary(session, state, _canonical_id(deployment_id))
    return console.render(request, f"partials/deployments/{fragment}.html", context)


@router.post("/deployments/{deployment_id}/retry")
async def retry_deployment(
    deployment_id: str,
    request: Request,
    _fields: CheckedFields,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """New commands for what failed, in the same deployment; htmx gets the summary back
    (saying what was refused, if anything), a plain form post the deployment's page."""
    deployment_id = _canonical_id(deployment_id)
    error: str | None = None
    try:
        await deployments.retry_failed(
            session,
            deployment_id=deployment_id,
            actor=user_actor(request, admin),
            now=now,
            expires_in=state.settings.command_expiry,
        )
    except DomainError as refused:
        error = refusal_for_fragment(request, refused)
    else:
        await work.commit()
    if not wants_fragment(request):
        return RedirectResponse(f"/deployments/{deployment_id}", status_code=303)
    context = await _summary(session, state, deployment_id)
    return console.render(request, "partials/deployments/summary.html", {**context, "error": error})


@router.post("/deployments")
async def run_on_selection(
    request: Request,
    fields: CheckedFields,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """ "Run updates" in the device list's bulk bar: every waiting update on the devices
    ticked, or on all the list's filters match, as one deployment. Asks first: a form
    posted without ``confirmed=yes`` gets a page that says how many devices it is for,
    with a form that confirms; then the deployment's page."""
    selection, filters = selection_of_form(fields)
    device_ids = await device_queries.selected_ids(
        session, selection=selection, liveness=state.liveness, now=now
    )
    if dict(fields).get("confirmed") != "yes":
        kept = [
            (name, value)
            for name, value in fields
            if name in ("device_id", "scope") or name.startswith("filter_")
        ]
        waiting, offline = await deployment_queries.with_updates(
            session, device_ids=device_ids, offline_before=state.liveness.cutoff(now)
        )
        context = {"selected": len(device_ids), "waiting": waiting, "offline": offline}
        return console.render(
            request,
            "pages/deployments/confirm_run.html",
            {**context, "fields": kept, "filters": filters},
        )
    run = await deployments.run_on_devices(
        session,
        device_ids=device_ids,
        packages=None,
        selection=selection.described(),
        actor=user_actor(request, admin),
        now=now,
        expires_in=state.settings.command_expiry,
    )
    await work.commit()
    return RedirectResponse(f"/deployments/{run.deployment.id}", status_code=303)

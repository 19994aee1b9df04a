"""The Compliance page: the fleet's or a group's figures, each linked to its rows; to an htmx
request (a live refresh) only the figures' fragment."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from lunaris_server.accounts.deps import ConsoleUser
from lunaris_server.compliance import history
from lunaris_server.compliance.figures_cache import FiguresCache
from lunaris_server.compliance.panel import panel
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.console.htmx import wants_fragment
from lunaris_server.core.ids import MAX_ROW_ID
from lunaris_server.devices import groups as device_groups
from lunaris_server.web.deps import NowDep, SessionDep, StateDep

router = APIRouter(include_in_schema=False)


@router.get("/compliance")
async def compliance_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
    group_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    context: dict[str, object] = {
        "compliance": await panel(
            session, group_id=group_id, now=now, cache=state.part(FiguresCache)
        )
    }
    if wants_fragment(request):
        return console.render(request, "partials/compliance/figures.html", context)
    context["groups"] = await device_groups.list_groups(session)
    context["latest"] = await history.latest_of_groups(session)
    return console.render(request, "pages/compliance/index.html", context)

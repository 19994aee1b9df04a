"""The audit log page, for admins. The log is written by every domain (audit/ is the lowest
of them); its page and API need to know who is asking, so they live here with accounts."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from lunaris_server.accounts.deps import ConsoleAdmin
from lunaris_server.audit import service as audit
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.console.paging import PER_PAGE, Pager
from lunaris_server.web.deps import SessionDep

router = APIRouter(include_in_schema=False)


@router.get("/settings/audit")
async def audit_page(
    request: Request,
    _admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    rows, total = await audit.list_entries(session, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return console.render(
        request,
        "pages/audit/log.html",
        {"tab": "audit", "entries": rows, "pager": Pager(page, PER_PAGE, total)},
    )

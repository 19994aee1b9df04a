"""The audit log, for admins. It lives with accounts: see
audit_views.py."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from lunaris_server.accounts.deps import AdminUser
from lunaris_server.audit import service as audit
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import SessionDep
from lunaris_server.web.pagination import PageDep, Paginated

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=error_responses(401, 403, 422))


class AuditEntryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | None
    ip: str | None


@router.get("")
async def list_audit(
    _admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Paginated[AuditEntryOut]:
    rows, total = await audit.list_entries(
        session, limit=page.limit, offset=page.offset, action=action
    )
    return Paginated(
        items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )

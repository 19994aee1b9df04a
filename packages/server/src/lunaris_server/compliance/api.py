"""Console JSON API for compliance: the figures now, their daily history, and the device x
package rows behind each figure as CSV."""

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.responses import Response

from lunaris_server.accounts.deps import CurrentUser
from lunaris_server.compliance import export, history
from lunaris_server.compliance import service as compliance
from lunaris_server.compliance.service import Figure, Figures
from lunaris_server.core.ids import MAX_ROW_ID
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.deps import NowDep, SessionDep

router = APIRouter(tags=["compliance"], responses=error_responses(401, 404, 422))

GroupQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_ROW_ID, description="a group's figures; the fleet's when left out"),
]


class FiguresOut(BaseModel):
    devices: int
    """Enrolled devices (of the group)."""
    compliant: int
    """Devices with a scan that worked and no waiting update that a package rule does not
    ignore."""
    missing: int
    """Devices with one at least."""
    not_scanned: int
    """Devices with no scan that worked yet: not compliant, and not missing either (no
    update is known to wait on them)."""
    compliant_percent: float | None
    """compliant / devices, in percent; null for no devices."""
    overdue: int
    """Devices with such an update waiting longer than their policy's SLA."""
    waiting: int
    """Waiting updates (device x package) that rules do not ignore."""
    age_0_7: int
    age_8_30: int
    age_over_30: int
    """Of those, by whole days since the device first reported them."""

    @classmethod
    def of(cls, figures: Figures) -> "FiguresOut":
        return cls(
            **asdict(figures),
            missing=figures.missing,
            compliant_percent=figures.compliant_percent,
        )


class ComplianceOut(FiguresOut):
    group_id: int | None
    at: datetime


class DayOut(FiguresOut):
    day: date


@router.get("/api/compliance")
async def compliance_now(
    _user: CurrentUser, session: SessionDep, now: NowDep, group_id: GroupQuery = None
) -> ComplianceOut:
    """The fleet's (or a group's) compliance now."""
    scope = await compliance.scope(session, group_id=group_id, now=now)
    figures = FiguresOut.of(await compliance.figures(session, scope))
    return ComplianceOut(**figures.model_dump(), group_id=group_id, at=now)


@router.get("/api/compliance/history")
async def compliance_history(
    _user: CurrentUser,
    session: SessionDep,
    now: NowDep,
    group_id: GroupQuery = None,
    days: Annotated[
        int, Query(ge=1, le=history.MAX_DAYS, description="UTC days, today's too")
    ] = 90,
) -> list[DayOut]:
    """One snapshot a UTC day, oldest first; a day without one is left out."""
    found = await history.history(session, group_id=group_id, days=days, now=now)
    return [DayOut(**FiguresOut.of(d.figures).model_dump(), day=d.day) for d in found]


@router.get(
    "/api/compliance/devices.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def compliance_csv(
    _user: CurrentUser,
    session: SessionDep,
    now: NowDep,
    figure: Annotated[Figure, Query(description="the figure whose rows to list")] = "missing",
    group_id: GroupQuery = None,
) -> Response:
    """The device x package rows behind a figure (cells that would start a formula in a
    spreadsheet start with ``'``)."""
    scope = await compliance.scope(session, group_id=group_id, now=now)
    body = await export.figure_csv(session, scope, figure)
    name = f"lunaris-compliance-{figure}" + (f"-group-{group_id}" if group_id else "") + ".csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

"""The waiting updates a tick may queue, read a page of devices at a time: those an auto
rule could decide (the condition comes from planning.py), on enrolled devices, whose version
was never queued for the device before (``policy_installs``)."""

from collections.abc import AsyncIterator

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.devices.models import Device
from lunaris_server.policies.models import PolicyInstall
from lunaris_server.updates.models import DeviceUpdate

Waiting = Row[str, str, str | None, str, int]
"""A waiting update: device id, package id, source, available version, and 0 or 1: after
the point a tick resumes from, or up to it."""


def _search(
    auto: ColumnElement[bool], part: ColumnElement[int]
) -> Select[str, str, str | None, str, int]:
    """The waiting updates an auto rule could decide, leaving out at once (in the database)
    every version queued for its device before: on most ticks this finds nothing."""
    queued_before = (
        select(PolicyInstall.id)
        .where(
            PolicyInstall.device_id == DeviceUpdate.device_id,
            PolicyInstall.package_identifier == DeviceUpdate.package_identifier,
            PolicyInstall.source == func.coalesce(DeviceUpdate.source, ""),
            PolicyInstall.version == DeviceUpdate.available_version,
        )
        .exists()
    )
    return (
        select(
            DeviceUpdate.device_id,
            DeviceUpdate.package_identifier,
            DeviceUpdate.source,
            DeviceUpdate.available_version,
            part,
        )
        .join(Device, Device.id == DeviceUpdate.device_id)
        .where(
            Device.revoked_at.is_(None),
            DeviceUpdate.truncated.is_(False),
            auto,
            ~queued_before,
        )
    )


async def pages(
    session: AsyncSession,
    auto: ColumnElement[bool],
    *,
    rows_per_page: int | None,
    resume_after: str | None,
    backlog: bool,
) -> AsyncIterator[list[Waiting]]:
    """The waiting rows a page at a time (every device's rows in one page; a page is of
    consecutive device ids), so that a tick that can queue only so many devices reads little
    more than their rows: first those of the devices after ``resume_after``, then those up
    to it, each in id order (``rows_per_page`` None: all of them in one page).

    How the database best finds a page depends on how much is due. Most ticks find nothing:
    then the rows are best found as a whole (one pass over the auto packages' index against
    the queued versions) and ordered after, and the query is written so (``OFFSET 0``
    keeps the database from planning the search for the order and the limit: it would
    walk every update row of the fleet in device order, or sort all the auto packages' rows
    before looking up which were queued). In a ``backlog`` (the tick before was full) a
    page is found sooner by walking the devices in order and stopping at the page's end, so
    the query is left to the planner."""
    later = case((DeviceUpdate.device_id > (resume_after or ""), 0), else_=1)
    search = _search(auto, later.label("part"))
    found = (search if backlog else search.offset(0)).subquery("waiting")
    waiting = select(found)
    ordered = waiting.order_by(found.c.part, found.c.device_id, found.c.package_identifier)
    after: tuple[int, str] | None = None
    while True:
        page = ordered
        if after is not None:
            part, device_id = after
            page = page.where(
                or_(found.c.part > part, and_(found.c.part == part, found.c.device_id > device_id))
            )
        if rows_per_page is not None:
            page = page.limit(rows_per_page)
        rows = list(await session.execute(page))
        full = len(rows) == rows_per_page
        if full:
            last = rows[-1].device_id
            whole = [row for row in rows if row.device_id != last]
            if not whole:  # one device waits for more than a page: its rows alone
                one = waiting.where(found.c.device_id == last)
                whole = list(await session.execute(one.order_by(found.c.package_identifier)))
            rows = whole
        for part in (0, 1):  # (a page of consecutive ids on each side of the resume point)
            if run := [row for row in rows if row.part == part]:
                yield run
        if not full:
            return
        after = (rows[-1].part, rows[-1].device_id)

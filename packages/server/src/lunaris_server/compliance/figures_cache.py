"""The console's compliance figures, counted at most once per ``ttl_s`` per scope and process.

The card and the page follow the ``fleet`` topic, which fires with every report: at 100,000
devices one count takes a second or more (docs/policies.md), so each open console asking
each second would keep the database counting. Consoles of one process share a count for
``ttl_s`` (and one count runs at a time per scope); the API answers a fresh one.
"""

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.compliance import service as compliance


class FiguresCache:
    def __init__(self, *, ttl_s: float = 30.0) -> None:
        self._ttl = timedelta(seconds=ttl_s)
        self._found: dict[int | None, tuple[datetime, compliance.Figures]] = {}
        self._locks: defaultdict[int | None, asyncio.Lock] = defaultdict(asyncio.Lock)

    def _fresh(self, group_id: int | None, now: datetime) -> compliance.Figures | None:
        found = self._found.get(group_id)
        if found is None or not (now - self._ttl < found[0] <= now):
            return None
        return found[1]

    async def figures(self, session: AsyncSession, scope: compliance.Scope) -> compliance.Figures:
        group_id = scope.group.id if scope.group is not None else None
        async with self._locks[group_id]:
            figures = self._fresh(group_id, scope.now)
            if figures is None:
                figures = await compliance.figures(session, scope)
                self._found[group_id] = (scope.now, figures)
            return figures

"""Coalesced heartbeat timestamps.

A heartbeat that changes nothing else would cost a transaction and a row rewrite (with its
index updates: ``last_seen_at`` is indexed) per request. Instead its time is kept in memory
and each interval one statement writes every device's latest time. What a crash can lose is
one interval of "last seen" times, never a report or a status change: those are written by
their own requests.
"""

from datetime import datetime
from typing import cast

import structlog
from sqlalchemy import Table, bindparam, update

from lunaris_server.db import Database
from lunaris_server.devices.models import Device

log = structlog.get_logger("lunaris.last_seen")


class LastSeenWriter:
    def __init__(self, database: Database, *, interval_s: float = 1.0) -> None:
        self._database = database
        self.interval_s = interval_s
        self._pending: dict[str, datetime] = {}
        table = cast(Table, Device.__table__)
        seen = bindparam("b_seen", type_=table.c.last_seen_at.type)
        # Never moves a time backwards: a request that wrote a newer one wins.
        self._statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.last_seen_at < seen)
            .values(last_seen_at=seen)
        )

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def record(self, device_id: str, seen_at: datetime) -> None:
        current = self._pending.get(device_id)
        if current is None or seen_at > current:
            self._pending[device_id] = seen_at

    async def flush(self) -> int:
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        # In id order: row locks taken in the same order as every other multi-device writer
        # (commands.overlap.lock_devices), so the two never deadlock on PostgreSQL.
        rows = [{"b_id": device_id, "b_seen": seen} for device_id, seen in sorted(batch.items())]
        try:
            async with self._database.session() as session:
                await session.execute(self._statement, rows)
                await session.commit()
        except Exception:
            # Keep the times for the next try, unless newer ones arrived meanwhile.
            for device_id, seen in batch.items():
                self.record(device_id, seen)
            raise
        return len(rows)
